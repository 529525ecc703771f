"""Shipped models, chosen by name: every `<name>.onnx` in this folder is a model named `<name>`."""
from __future__ import annotations

from pathlib import Path

from realtime.errors import UnveilError

MODELS_DIR = Path(__file__).resolve().parent
DEFAULT_FINDER = "occlusion-lite"
DEFAULT_BLIND = "blind-lite"
DEFAULT_SYMMETRY = "symmetry-lite"
DEFAULT_CHANGE = "occlusion-change"  # the surface evidence (realtime.find.surface), used when shipped


def available_models() -> dict[str, Path]:
    return {p.stem: p for p in sorted(MODELS_DIR.glob("*.onnx"))}


def resolve_model(name_or_path: str) -> Path:
    """A shipped model's name, or a path to an .onnx file."""
    shipped = available_models()
    if name_or_path in shipped:
        return shipped[name_or_path]
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    known = ", ".join(shipped) or "none shipped"
    raise UnveilError(f"model {name_or_path!r} is neither a file nor a shipped model (shipped: {known})")
