"""Checkpoints: written whole or not at all, loaded with a clear error, rotated; the RNG states they keep for an exact
resume; warm starts from another run's checkpoint or an exported ONNX file; `load_generator` for the exporter."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from realtime.errors import UnveilError
from trainer.builders import build_network
from trainer.config import parse_named
from trainer.onnx_weights import state_dict_from_onnx
from trainer.registry import NETWORKS, import_networks


def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint under the real name


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UnveilError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UnveilError(f"{path} is not an Unveil checkpoint ({type(exc).__name__}: {str(exc)[:150]})") from None


def read_run(path: Path) -> dict:
    """A standalone trainer's own checkpoint (train-segmenter, train-vae, train-fcsr), trusted: it holds settings
    beside the tensors."""
    return torch.load(path, map_location="cpu", weights_only=False)


def load_parts(state: dict, parts: dict) -> int:
    """Load each part (a network or an optimiser) from `state` under its key; returns the step it was saved at."""
    for key, part in parts.items():
        part.load_state_dict(state[key])
    return int(state["step"])


def rotate_checkpoints(folder: Path, keep: int) -> None:
    steps = sorted(folder.glob("step_*.pt"))
    for old in steps[:-keep] if keep > 0 else []:
        old.unlink()


def rng_states() -> dict:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.random.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.random.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def settle_spectral_norms(network: nn.Module, iterations: int = 20) -> None:
    """An ONNX file holds no power-iteration vector: estimate each spectral-norm conv's from its weight, so the
    first training step divides by the weight's real sigma rather than a random vector's underestimate. The
    stored sigma stays 1, so evaluation gives the ONNX file's outputs (training re-estimates it every step)."""
    with torch.no_grad():
        for module in network.modules():
            if hasattr(module, "power_iteration"):
                for _ in range(iterations):
                    module.power_iteration()
                module.sigma.fill_(1.0)


def warm_start(network: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Load the matching weights of another run's checkpoint, or of an exported ONNX file (its initializers,
    trainer/onnx_weights.py) -- runs/ does not outlive a machine, realtime/models does. Names and shapes must
    match (trainer.networks.recurrent.load_matching_weights)."""
    from trainer.networks.recurrent import load_matching_weights

    if Path(path).suffix.lower() == ".onnx":
        source = state_dict_from_onnx(path)
    else:
        checkpoint = load_checkpoint(path)
        if "model" not in checkpoint:
            raise UnveilError(f"init.checkpoint {path} has no model weights")
        source = checkpoint["model"]
    report = load_matching_weights(network, source)
    if Path(path).suffix.lower() == ".onnx":
        settle_spectral_norms(network)
    if not report["copied"]:
        raise UnveilError(f"init.checkpoint {path} shares no weights with network {type(network).__name__}")
    print(f"warm start from {path}: {len(report['copied'])} tensors copied, {len(report['widened'])} widened "
          f"({', '.join(report['widened']) or 'none'}), {len(report['kept'])} left as initialised")
    return report


def load_generator(path: str | Path) -> tuple[nn.Module, dict]:
    """(network in eval mode with the checkpoint's weights, the checkpoint) -- what the exporter needs."""
    checkpoint = load_checkpoint(path)
    if "model" not in checkpoint or "config" not in checkpoint:
        raise UnveilError(f"{path} is not an Unveil training checkpoint (no model/config)")
    import_networks()
    spec = checkpoint["config"]["network"]
    network = build_network(parse_named(spec, "network", NETWORKS.names(), "network"))
    network.load_state_dict(checkpoint["model"])
    return network.eval(), checkpoint
