"""What the viewer remembers between runs (QSettings), and how its sliders map onto the stage configs."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from PyQt6.QtCore import QSettings

from realtime.choices import NETWORK_FILLERS, PROVIDERS
from realtime.fill import FillConfig
from realtime.find import FindConfig
from realtime.pipeline import PipelineConfig

@dataclass(frozen=True)
class ViewerSettings:
    source: str = ""
    models: tuple[str, ...] = ()
    mode: str = "auto"
    provider: str = "auto"
    threshold: float = 0.0          # find: probability that counts as covered; 0 = the model's calibrated threshold
    smoothing: float = 0.5          # find: mask persistence per track; 0 = every frame on its own, 1 = longest hold
    feather: float = 0.012          # fill: soft edge outside the occlusion, as a fraction of the face crop
    reference: str = ""             # a clean photo of the person that seeds the face memory
    compare: str = "side_by_side"
    split: float = 0.5
    show_mask: bool = False
    show_faces: bool = True
    show_landmarks: bool = False
    symmetrize: bool = False        # view: every face made symmetric (Y)
    show_asymmetry: bool = False    # view: asymmetry heat-map (H)
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
    if settings.mode not in NETWORK_FILLERS:
        settings = replace(settings, mode=defaults.mode)
    if settings.provider not in PROVIDERS:
        settings = replace(settings, provider=defaults.provider)
    return settings


def save_settings(store: QSettings, settings: ViewerSettings) -> None:
    for f in fields(ViewerSettings):
        value = getattr(settings, f.name)
        store.setValue(f.name, list(value) if isinstance(value, tuple) else value)


def find_config(base: FindConfig, threshold: float, smoothing: float) -> FindConfig:
    """Threshold 0 = the model's own; smoothing s in [0, 1]: 0 decides every frame alone, more holds an occlusion
    on longer as the finder weakens (hysteresis from 0.9 down to 0.4 of the threshold)."""
    s = min(max(smoothing, 0.0), 1.0)
    return replace(base, threshold=min(max(threshold, 0.01), 0.99) if threshold > 0 else None,
                   persist_frames=2 if s > 0 else 1, off_ratio=0.9 - 0.5 * s)


def fill_config(base: FillConfig, feather: float) -> FillConfig:
    return replace(base, feather=max(feather, 0.0))


def pipeline_config(base: PipelineConfig, settings: ViewerSettings) -> PipelineConfig:
    return replace(base, models=tuple(settings.models), network=settings.mode, provider=settings.provider,
                   reference=settings.reference or base.reference,
                   find=find_config(base.find, settings.threshold, settings.smoothing),
                   fill=fill_config(base.fill, settings.feather))


def needs_rebuild(old: PipelineConfig | None, new: PipelineConfig) -> bool:
    """Models, network filler, provider, threads, detector or reference photo changed: the pipeline must be built again (in the worker)."""
    if old is None:
        return True
    keys = ("models", "network", "provider", "device_id", "threads", "detector", "reference")
    return any(getattr(old, key) != getattr(new, key) for key in keys)
