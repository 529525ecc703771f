"""What a registered network costs: parameters, GFLOPs (batch 1) and onnxruntime CPU latency.

    python -m trainer.network_cost c2fdan --preset lite
    python -m trainer.network_cost symmfcnet --crop-size 128 --runs 50

Dummy inputs follow the network's `input_roles`: images uniform in [0, 1], masks binary (1 = occluded).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from realtime.errors import UnveilError
from trainer.registry import NETWORKS, import_networks


@dataclass(frozen=True)
class NetworkCost:
    name: str
    crop_size: int
    params: int
    gflops: float             # FlopCounterMode count (a multiply-add is 2 FLOPs), batch 1
    latency_ms: float | None  # onnxruntime CPU, median; None when not measured
    exporter: str | None      # "dynamo" or "torchscript" (opset 17), whichever exported


class RoleOutputs(nn.Module):
    """Wraps a network so it returns the tuple of its `output_roles` (what an ONNX graph needs)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network
        self.output_roles = tuple(network.output_roles)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.network(*inputs)
        return tuple(outputs[role] for role in self.output_roles)


def build_network(name: str, preset: str | None = None, crop_size: int | None = None) -> nn.Module:
    """Build a registered network, passing only the options given (builders differ in what they accept). A network
    module that fails to import is reported and skipped."""
    for module, error in import_networks().items():
        warnings.warn(f"trainer.networks.{module} could not be imported: {error}")
    kwargs: dict[str, object] = {}
    if preset is not None:
        kwargs["preset"] = preset
    if crop_size is not None:
        kwargs["crop_size"] = crop_size
    try:
        return NETWORKS.build(name, **kwargs)
    except KeyError as error:
        raise UnveilError(str(error.args[0])) from None
    except TypeError as error:
        raise UnveilError(f"network {name!r} does not accept {sorted(kwargs)}: {error}") from None


def dummy_inputs(network: nn.Module, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """One tensor per input role: images uniform in [0, 1], masks binary."""
    generator = torch.Generator().manual_seed(seed)
    size = int(network.crop_size)
    inputs = []
    for role in network.input_roles:
        if role == "image":
            inputs.append(torch.rand(batch, 3, size, size, generator=generator))
        elif role == "mask":
            inputs.append((torch.rand(batch, 1, size, size, generator=generator) > 0.7).float())
        else:
            raise UnveilError(f"no dummy input for role {role!r} (known: image, mask)")
    return tuple(inputs)


def count_params(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


def count_gflops(network: nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
    network.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(*inputs)
    return counter.get_total_flops() / 1e9


def export_onnx(network: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path, dynamo: bool = True) -> str:
    """Export with a dynamic batch axis: the dynamo exporter first (unless `dynamo` is False), the TorchScript one
    (opset 17) if it fails. The TorchScript exporter is much faster: tests use it.

    Returns which exporter succeeded. Tensors are named input_<role> and output_<role> (ONNX forbids an input and an
    output with the same name, and "image" is both).
    """
    wrapped = RoleOutputs(network).eval()
    input_names = [f"input_{role}" for role in network.input_roles]
    output_names = [f"output_{role}" for role in network.output_roles]
    if dynamo:
        try:
            return export_dynamo(wrapped, inputs, path, input_names, output_names)
        except Exception as error:  # noqa: BLE001 - any dynamo failure: fall back to the TorchScript exporter
            warnings.warn(f"dynamo ONNX export failed ({type(error).__name__}: {str(error)[:200]}); using dynamo=False")
    axes = {name: {0: "batch"} for name in input_names + output_names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapped, inputs, str(path), input_names=input_names, output_names=output_names,
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )
    return "torchscript"


def export_dynamo(
    wrapped: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path, input_names: list[str], output_names: list[str]
) -> str:
    batch = torch.export.Dim("batch", min=1, max=64)
    # RoleOutputs.forward takes *inputs: its dynamic shapes are one tuple, one entry per input.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped, inputs, str(path), input_names=input_names, output_names=output_names,
            dynamic_shapes=(tuple({0: batch} for _ in inputs),), dynamo=True, verbose=False,
        )
    return "dynamo"


def cpu_session(path: Path, threads: int = 2):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_session(session, feeds: dict[str, np.ndarray], runs: int = 30, warmup: int = 5) -> float:
    """Median wall time of one run in milliseconds, after `warmup` untimed runs."""
    for _ in range(warmup):
        session.run(None, feeds)
    times = []
    for _ in tqdm(range(runs), desc="onnxruntime CPU", leave=False):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def measure(
    name: str, network: nn.Module, runs: int = 30, threads: int = 2, latency: bool = True, dynamo: bool = True
) -> NetworkCost:
    inputs = dummy_inputs(network)
    params = count_params(network)
    gflops = count_gflops(network, inputs)
    latency_ms = exporter = None
    if latency:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "network.onnx"
            exporter = export_onnx(network, inputs, path, dynamo=dynamo)
            session = cpu_session(path, threads)
            feeds = {f"input_{role}": tensor.numpy() for role, tensor in zip(network.input_roles, inputs)}
            latency_ms = time_session(session, feeds, runs=runs)
    return NetworkCost(name, int(network.crop_size), params, gflops, latency_ms, exporter)


def format_cost(cost: NetworkCost) -> str:
    latency = "not measured" if cost.latency_ms is None else f"{cost.latency_ms:.2f} ms ({cost.exporter} export)"
    return (
        f"{cost.name}: crop {cost.crop_size}, params {cost.params / 1e6:.3f} M, {cost.gflops:.3f} GFLOPs, "
        f"onnxruntime CPU latency {latency}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("network", help="registered network name, e.g. c2fdan")
    parser.add_argument("--preset", default=None, help="network preset (e.g. lite, full)")
    parser.add_argument("--crop-size", type=int, default=None, help="override the crop size")
    parser.add_argument("--runs", type=int, default=30, help="timed onnxruntime runs (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument("--no-latency", action="store_true", help="skip ONNX export and timing")
    parser.add_argument(
        "--exporter", choices=("dynamo", "torchscript"), default="dynamo",
        help="ONNX exporter (dynamo falls back to torchscript, opset 17, if it fails)",
    )


def run(args: argparse.Namespace) -> int:
    if args.runs < 1:
        raise UnveilError(f"--runs must be >= 1, got {args.runs}")
    torch.manual_seed(0)
    network = build_network(args.network, args.preset, args.crop_size)
    label = args.network if args.preset is None else f"{args.network}/{args.preset}"
    cost = measure(
        label, network, runs=args.runs, threads=args.threads, latency=not args.no_latency, dynamo=args.exporter == "dynamo"
    )
    print(format_cost(cost))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.network_cost", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args()
    try:
        return run(args)
    except UnveilError as error:
        print(f"network_cost: error: {error}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
