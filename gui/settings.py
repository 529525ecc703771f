"""What the viewer remembers between runs (QSettings), and how its sliders map onto the stage configs."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from PyQt6.QtCore import QSettings

from realtime.blend import BlendConfig
from realtime.pipeline import PipelineConfig
from realtime.temporal import TemporalConfig

MODES = ("auto", "blind", "symmetry", "blind+symmetry")  # auto: blind+symmetry when a symmetry model is loaded
PROVIDERS = ("auto", "cpu", "cuda", "tensorrt")


@dataclass(frozen=True)
class ViewerSettings:
    source: str = ""
    models: tuple[str, ...] = ()
    mode: str = "auto"
    provider: str = "auto"
    threshold: float = 0.5          # blend: mask probability that counts as occluded
    smoothing: float = 0.5          # temporal: 0 = off, 1 = strongest
    feather: float = 0.03           # blend: soft edge as a fraction of the crop
    compare: str = "side_by_side"
    split: float = 0.5
    show_mask: bool = False
    show_faces: bool = True
    show_landmarks: bool = False
    output_dir: str = field(default_factory=lambda: str(Path.home()))


def load_settings(store: QSettings, defaults: ViewerSettings = ViewerSettings()) -> ViewerSettings:
    """Saved values where present and of the right type; defaults otherwise (a damaged file never breaks startup)."""
    values = {}
    for f in fields(ViewerSettings):
        default = getattr(defaults, f.name)
        if not store.contains(f.name):
            continue
        raw = store.value(f.name)
        try:
            if isinstance(default, bool):
                values[f.name] = raw if isinstance(raw, bool) else str(raw).lower() in ("true", "1")
            elif isinstance(default, float):
                values[f.name] = float(raw)
            elif isinstance(default, tuple):
                items = raw if isinstance(raw, list) else ([raw] if raw else [])
                values[f.name] = tuple(str(item) for item in items)
            else:
                values[f.name] = str(raw)
        except (TypeError, ValueError):
            continue
    settings = replace(defaults, **values)
    if settings.mode not in MODES:
        settings = replace(settings, mode=defaults.mode)
    if settings.provider not in PROVIDERS:
        settings = replace(settings, provider=defaults.provider)
    return settings


def save_settings(store: QSettings, settings: ViewerSettings) -> None:
    for f in fields(ViewerSettings):
        value = getattr(settings, f.name)
        store.setValue(f.name, list(value) if isinstance(value, tuple) else value)


def temporal_config(base: TemporalConfig, smoothing: float) -> TemporalConfig:
    """Smoothing strength s in [0, 1]: off at 0; the newest mask's weight falls from 1 to 0.1 as s grows."""
    s = min(max(smoothing, 0.0), 1.0)
    return replace(base, enabled=s > 0.0, mask_ema=1.0 - 0.9 * s)


def blend_config(base: BlendConfig, threshold: float, feather: float) -> BlendConfig:
    return replace(base, threshold=min(max(threshold, 0.01), 0.99), feather=max(feather, 0.0))


def pipeline_config(base: PipelineConfig, settings: ViewerSettings) -> PipelineConfig:
    return replace(base, models=tuple(settings.models), mode=settings.mode, provider=settings.provider,
                   temporal=temporal_config(base.temporal, settings.smoothing),
                   blend=blend_config(base.blend, settings.threshold, settings.feather))


def needs_rebuild(old: PipelineConfig | None, new: PipelineConfig) -> bool:
    """Models, mode, provider, threads or detector changed: the pipeline must be built again (in the worker)."""
    if old is None:
        return True
    keys = ("models", "mode", "provider", "device_id", "threads", "detector")
    return any(getattr(old, key) != getattr(new, key) for key in keys)
