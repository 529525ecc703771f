"""Parse `unveil COMMAND ...` and run the command's module. A module is imported only when its command runs, so a
runtime-only install (no torch) runs process / live / bench / demo, and every command's --help works."""
from __future__ import annotations

import __future__
import argparse
import ast
import importlib
import importlib.util
import logging
import os
import signal
import sys
import threading
from typing import Callable, NamedTuple

from realtime.errors import UnveilError


class Command(NamedTuple):
    module: str        # provides add_arguments(parser) and run(args) -> int
    help: str
    extra: str = ""    # the pip extra the module needs beyond the runtime, if any
    arguments: str = ""  # the module whose add_arguments the command re-exports, if not `module` itself


COMMANDS: dict[str, Command] = {
    "process": Command("cli.process", "remove occlusions from a video file, an image or a folder of images"),
    "live": Command("cli.live", "live occlusion removal from a camera, file or stream"),
    "symmetrize": Command("cli.symmetrize", "a symmetric version of every face (photo, folder, video) and its asymmetry score"),
    "bench": Command("cli.bench", "throughput and per-stage latency on a clip"),
    "demo": Command("cli.demo", "make a short clip of a public-domain face with a moving occluder and clean it"),
    "prepare": Command("trainer.prepare", "align the faces of an image folder into a compact training dataset", "train"),
    "train": Command("trainer.train", "train a network from a JSON config", "train"),
    "train-segmenter": Command("cli.train_segmenter", "train, calibrate and export the occlusion segmenter", "train",
                               arguments="trainer.train_segmenter"),
    "train-reference": Command("cli.train_reference", "train, calibrate and export the reference-conditioned "
                               "segmenter (change on the face surface)", "train", arguments="trainer.train_reference"),
    "train-vae": Command("cli.train_vae", "train and export the symmetric-face VAE (three stages)", "train",
                         arguments="trainer.train_vae"),
    "export": Command("exporters.onnx_export", "export a checkpoint to ONNX with the model contract and a parity check",
                      "train"),
    "eval": Command("trainer.evaluate", "evaluate an ONNX model on a prepared dataset against baselines", "train"),
    "train-fcsr": Command("cli.train_fcsr", "train or export the small-face completion + x4 super-resolution network",
                          "train", arguments="trainer.train_fcsr"),
    "eval-symmetry": Command("trainer.evaluate_symmetry",
                             "symmetry network ablation (blind / RecNet / SymmFCNet / blind+symmetry)", "train"),
    "temporal-eval": Command("trainer.evaluation.temporal", "measure temporal stability on real clips with moving occluders"),
    "batch": Command("cli.batch", "process many videos, locally or on a Ray cluster, resumably"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top level: global options and the list of commands (each command parses its own arguments)."""
    parser = argparse.ArgumentParser(prog="unveil", description="Real-time removal of occlusions from faces.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.help, add_help=False)
    return parser


def command_parser(name: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"unveil {name}", description=COMMANDS[name].help)


def parse_command(argv: list[str]) -> tuple[argparse.Namespace, argparse.Namespace]:
    """(global options, the command's own arguments); imports the command's module."""
    top, rest = build_parser().parse_known_args(argv)
    parser = command_parser(top.command)
    importlib.import_module(COMMANDS[top.command].module).add_arguments(parser)
    return top, parser.parse_args(rest)


def add_arguments_without_importing(module_name: str) -> Callable[[argparse.ArgumentParser], None] | None:
    """A command's add_arguments, read without running its module (whose imports may need torch): the module-level
    imports, constants and add_arguments are executed one by one and those that fail are skipped."""
    spec = importlib.util.find_spec(module_name)
    source = spec.loader.get_source(module_name) if spec and spec.loader else None
    if not source:
        return None
    namespace: dict = {"__name__": f"{module_name}:help", "__package__": spec.parent}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)) or (
                isinstance(node, ast.FunctionDef) and node.name == "add_arguments"):
            code = compile(ast.Module(body=[node], type_ignores=[]), spec.origin or module_name, "exec",
                           flags=__future__.annotations.compiler_flag, dont_inherit=True)
            try:
                exec(code, namespace)  # noqa: S102 - the project's own module, one statement at a time
            except Exception:  # noqa: BLE001 - e.g. `import torch` without torch: the help does not need it
                continue
    return namespace.get("add_arguments")


def print_help_without_extra(name: str, missing: str) -> int:
    """`unveil COMMAND --help` where COMMAND's extra is not installed: its real arguments and what to install."""
    parser = argparse.ArgumentParser(prog=f"unveil {name}", description=COMMANDS[name].help, epilog=f"Note: {missing}")
    try:
        add_arguments = add_arguments_without_importing(COMMANDS[name].arguments or COMMANDS[name].module)
        if add_arguments is not None:
            add_arguments(parser)
    except Exception:  # noqa: BLE001 - the usage line and the note are still worth showing
        parser = argparse.ArgumentParser(prog=f"unveil {name}", description=COMMANDS[name].help, epilog=f"Note: {missing}")
    parser.print_help()
    return 0


def show_native_logs() -> None:
    """mediapipe's C++ / TFLite log lines (realtime.detect keeps them off the terminal unless asked)."""
    os.environ["UNVEIL_NATIVE_LOGS"] = "1"
    os.environ.setdefault("GLOG_minloglevel", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")


def exit_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl+C (SystemExit through the same cleanup), so no half-written output stays behind."""
    def terminate(signum: int, _frame) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, terminate)


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the program itself, not a caller that owns the process's signals
        exit_on_sigterm()
        argv = sys.argv[1:]
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    top, rest = build_parser().parse_known_args(argv)
    if top.verbose:
        show_native_logs()
    command = COMMANDS[top.command]
    try:
        try:
            module = importlib.import_module(command.module)
        except ImportError as exc:
            if not command.extra:
                raise
            missing = (f"`unveil {top.command}` needs the training extras ({exc.name} is missing): "
                       "pip install 'unveil[train,cpu]' (or 'unveil[train,gpu]')")
            if "-h" in rest or "--help" in rest:
                return print_help_without_extra(top.command, missing)
            raise UnveilError(missing) from None
        parser = command_parser(top.command)
        module.add_arguments(parser)
        return module.run(parser.parse_args(rest))
    except UnveilError as exc:
        if top.verbose:
            raise
        print(f"unveil: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("unveil: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
