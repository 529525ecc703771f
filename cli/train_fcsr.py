"""`unveil train-fcsr`: train the joint completion + x4 super-resolution network (trainer.train_fcsr), or export its
checkpoint (exporters) with the contract kind `completion_super_resolution` (input 32 px, output 128 px, scale 4)."""
from __future__ import annotations

import argparse
from pathlib import Path

from trainer.train_fcsr import add_arguments, load_generator, train  # noqa: F401 - add_arguments: the command's options


def run(args: argparse.Namespace) -> int:
    if not args.export:
        return train(args)
    from exporters.onnx_export import export_with_report

    generator, state = load_generator(Path(args.out) / "last.pt")
    output = Path(args.export)
    result = export_with_report(generator, output, name=args.name or output.stem, template=str(state["template"]),
                                margin=float(state["margin"]), exporter="torchscript")
    c = result.contract
    print(f"wrote {output} ({c.kind}, {c.crop_size} px in, {c.crop_size * c.output_scale} px out, preset "
          f"{state['preset']}, step {state['step']}); parity max abs difference {result.max_abs_diff:.3g}")
    return 0
