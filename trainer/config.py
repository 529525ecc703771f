"""Training configs: JSON files validated into frozen dataclasses (TrainConfig), every default in one place.

A config chooses everything by name through the registries (trainer/registry.py): the network, the discriminators,
the losses and the learning-rate schedule; and the data (a folder made by `unveil prepare`, an occlusion protocol).
Training runs as a list of phases, each with its own steps, losses, generator forward, trainable parameter
prefixes, discriminators and learning rates.

A config file may name a `base`: {"base": "c2fdan_lite_cpu.json", "init": {...}} reads the base (relative to the
file's folder; a base may have a base) and merges the file's keys over it -- dicts key by key, any other value,
lists included, replaced -- so a variant names only what it changes. The resolved dict is what a run saves.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realtime.errors import UnveilError
from trainer import losses as _losses  # noqa: F401  (registers the losses)
from trainer import schedules as _schedules  # noqa: F401  (registers the schedules)
from trainer.registry import DISCRIMINATORS, LOSSES, NETWORKS, SCHEDULES, import_networks

SHIPPED = Path(__file__).parent / "configs"   # `unveil train NAME` finds these by bare name


@dataclass(frozen=True)
class Named:
    """A registry entry chosen by name, with its keyword arguments (and a weight, for losses)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0


@dataclass(frozen=True)
class PhaseConfig:
    name: str
    steps: int
    losses: tuple[Named, ...]
    forward: str = "forward"                  # generator method: "forward" or e.g. "forward_coarse"
    trainable: tuple[str, ...] = ("",)        # parameter-name prefixes that train ("" = everything)
    discriminators: tuple[str, ...] = ()      # names of the discriminators trained and used in this phase
    lr: float = 2e-4
    lr_groups: dict[str, float] = field(default_factory=dict)  # prefix -> lr (longest prefix wins)
    disc_lr: float = 2e-4


@dataclass(frozen=True)
class DataConfig:
    path: Path
    protocol: str
    batch_size: int = 8
    workers: int = 2
    val_size: int = 64
    sequence: Any = None   # trainer.sequence_data.SequenceConfig: train on synthetic sequences (recurrent networks)
    occlusion: dict = field(default_factory=dict)  # OcclusionSynth weights: mix_weights, realistic_weights, clean_fraction


@dataclass(frozen=True)
class LogConfig:
    log_every: int = 10
    val_every: int = 500
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    samples: int = 4


@dataclass(frozen=True)
class TrainConfig:
    network: Named
    data: DataConfig
    phases: tuple[PhaseConfig, ...]
    discriminators: dict[str, dict[str, Any]]
    schedule: Named
    log: LogConfig
    betas: tuple[float, float] = (0.5, 0.999)
    seed: int = 0
    amp: bool = True
    name: str = ""
    init: str | None = None                    # warm start: a checkpoint whose matching weights a fresh run loads
    raw: dict = field(default_factory=dict)    # the JSON as given (bases merged), saved in checkpoints

    @property
    def total_steps(self) -> int:
        return sum(p.steps for p in self.phases)


def _need(raw: dict, key: str, kind: type | tuple, where: str, default: Any = ...) -> Any:
    """raw[key], type-checked; a clear UnveilError naming the config path when it is missing or of the wrong type."""
    if key not in raw:
        if default is ...:
            raise UnveilError(f"config: {where}.{key} is missing")
        return default
    value = raw[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise UnveilError(f"config: {where}.{key} must be {names}, got {type(value).__name__} {value!r}")
    return value


def parse_named(raw: Any, where: str, registry_names: list[str], kind: str) -> Named:
    """A registry entry, given as its name or as {"name", "args", "weight"}, checked against the registered names."""
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise UnveilError(f"config: {where} must be an object with a 'name', got {raw!r}")
    name = _need(raw, "name", str, where)
    if name not in registry_names:
        raise UnveilError(f"config: {where}: unknown {kind} {name!r}; known: {', '.join(registry_names) or 'none'}")
    args = _need(raw, "args", dict, where, {})
    weight = _need(raw, "weight", float, where, 1.0)
    unknown = sorted(set(raw) - {"name", "args", "weight"})
    if unknown:
        raise UnveilError(f"config: {where} has unknown keys: {', '.join(unknown)}")
    return Named(name, dict(args), weight)


def _phase(raw: Any, index: int, disc_names: list[str]) -> PhaseConfig:
    where = f"phases[{index}]"
    if not isinstance(raw, dict):
        raise UnveilError(f"config: {where} must be an object")
    known = {"name", "steps", "losses", "forward", "trainable", "discriminators", "lr", "lr_groups", "disc_lr"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UnveilError(f"config: {where} has unknown keys: {', '.join(unknown)}")
    steps = _need(raw, "steps", int, where)
    if steps <= 0:
        raise UnveilError(f"config: {where}.steps must be positive, got {steps}")
    loss_list = _need(raw, "losses", list, where)
    if not loss_list:
        raise UnveilError(f"config: {where}.losses is empty")
    losses = tuple(parse_named(item, f"{where}.losses[{i}]", LOSSES.names(), "loss") for i, item in enumerate(loss_list))
    discs = _need(raw, "discriminators", (bool, list), where, False)
    if discs is True:
        discs = list(disc_names)
    elif discs is False:
        discs = []
    for name in discs:
        if name not in disc_names:
            raise UnveilError(f"config: {where}.discriminators names {name!r}, which the config's 'discriminators' lacks")
    uses_disc = [item.name for item in losses if item.name in ("adversarial", "feature_matching")]
    if uses_disc and not discs:
        raise UnveilError(f"config: {where} uses {', '.join(uses_disc)} but has no discriminators")
    trainable = _need(raw, "trainable", list, where, [""])
    lr_groups = _need(raw, "lr_groups", dict, where, {})
    for prefix, lr in lr_groups.items():
        if not isinstance(lr, (int, float)) or isinstance(lr, bool):
            raise UnveilError(f"config: {where}.lr_groups[{prefix!r}] must be a number, got {lr!r}")
    return PhaseConfig(
        name=_need(raw, "name", str, where, f"phase{index + 1}"),
        steps=steps,
        losses=losses,
        forward=_need(raw, "forward", str, where, "forward"),
        trainable=tuple(str(t) for t in trainable),
        discriminators=tuple(discs),
        lr=_need(raw, "lr", float, where, 2e-4),
        lr_groups={str(k): float(v) for k, v in lr_groups.items()},
        disc_lr=_need(raw, "disc_lr", float, where, 2e-4),
    )


def parse_config(raw: Any, data_path: str | Path | None = None) -> TrainConfig:
    """Validate a config dict; every problem becomes an UnveilError that says where it is.

    `base` is not resolved here (a dict has no folder to find it in): read a file with read_config."""
    import_networks()
    if not isinstance(raw, dict):
        raise UnveilError("config: the top level must be a JSON object")
    if "base" in raw:
        raise UnveilError("config: 'base' names a file, resolved when a config file is read (read_config / load_config)")
    known = {"name", "seed", "network", "data", "phases", "discriminators", "schedule", "log", "betas", "amp", "comment",
             "init"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UnveilError(f"config has unknown keys: {', '.join(unknown)}")
    network = parse_named(_need(raw, "network", (dict, str), "config"), "network", NETWORKS.names(), "network")
    data_raw = _need(raw, "data", dict, "config")
    path = Path(data_path) if data_path is not None else Path(_need(data_raw, "path", str, "data"))
    if not path.is_dir():
        raise UnveilError(f"config: data.path {str(path)!r} is not a folder (make one with `unveil prepare`)")
    sequence = None
    if "sequence" in data_raw:
        from trainer.sequence_data import SequenceConfig

        sequence = SequenceConfig.from_dict(data_raw["sequence"])
    data = DataConfig(
        path=path,
        protocol=_need(data_raw, "protocol", str, "data"),
        batch_size=_need(data_raw, "batch_size", int, "data", 8),
        workers=_need(data_raw, "workers", int, "data", 2),
        val_size=_need(data_raw, "val_size", int, "data", 64),
        sequence=sequence,
        occlusion=occlusion_options(data_raw.get("occlusion", {})),
    )
    if data.batch_size <= 0 or data.workers < 0 or data.val_size <= 0:
        raise UnveilError("config: data.batch_size and data.val_size must be positive, data.workers >= 0")
    discs_raw = _need(raw, "discriminators", dict, "config", {})
    for name, args in discs_raw.items():
        if name not in DISCRIMINATORS:
            raise UnveilError(f"config: unknown discriminator {name!r}; known: {', '.join(DISCRIMINATORS.names()) or 'none'}")
        if not isinstance(args, dict):
            raise UnveilError(f"config: discriminators.{name} must be an object of arguments")
    phases_raw = _need(raw, "phases", list, "config")
    if not phases_raw:
        raise UnveilError("config: phases is empty")
    phases = tuple(_phase(p, i, sorted(discs_raw)) for i, p in enumerate(phases_raw))
    schedule = parse_named(_need(raw, "schedule", (dict, str), "config", "constant"), "schedule", SCHEDULES.names(), "schedule")
    log_raw = _need(raw, "log", dict, "config", {})
    log = LogConfig(**{k: _need(log_raw, k, int, "log", getattr(LogConfig, k)) for k in LogConfig.__dataclass_fields__})
    init = None
    if "init" in raw:
        init_raw = _need(raw, "init", dict, "config")
        unknown = sorted(set(init_raw) - {"checkpoint"})
        if unknown:
            raise UnveilError(f"config: init has unknown keys: {', '.join(unknown)}")
        init = _need(init_raw, "checkpoint", str, "init")
    betas = _need(raw, "betas", list, "config", [0.5, 0.999])
    if len(betas) != 2 or not all(isinstance(b, (int, float)) for b in betas):
        raise UnveilError(f"config: betas must be two numbers, got {betas!r}")
    return TrainConfig(
        network=network, data=data, phases=phases, discriminators={k: dict(v) for k, v in discs_raw.items()},
        schedule=schedule, log=log, betas=(float(betas[0]), float(betas[1])), seed=_need(raw, "seed", int, "config", 0),
        amp=_need(raw, "amp", bool, "config", True), name=_need(raw, "name", str, "config", ""), init=init, raw=raw,
    )


OCCLUSION_OPTIONS = {"mix_weights": dict, "realistic_weights": dict, "clean_fraction": (int, float)}


def occlusion_options(raw: Any) -> dict:
    """data.occlusion: keyword arguments of OcclusionSynth (which checks the kinds and values themselves)."""
    if not isinstance(raw, dict):
        raise UnveilError("config: data.occlusion must be an object")
    unknown = sorted(set(raw) - set(OCCLUSION_OPTIONS))
    if unknown:
        raise UnveilError(f"config: data.occlusion has unknown keys: {', '.join(unknown)} "
                          f"(known: {', '.join(OCCLUSION_OPTIONS)})")
    for key, kind in OCCLUSION_OPTIONS.items():
        if key in raw and not isinstance(raw[key], kind):
            raise UnveilError(f"config: data.occlusion.{key} has the wrong type")
    from trainer.occlusion import OcclusionSynth

    try:  # the synth checks kind names and values; check them now, not when the datasets are built
        OcclusionSynth("mix", 64, **raw)
    except UnveilError as exc:
        raise UnveilError(f"config: data.occlusion: {exc}") from None
    return dict(raw)


def merge_config(base: dict, over: dict) -> dict:
    """`over` deep-merged over `base`: dicts merged key by key (recursively), any other value (a list too) replaced.
    The base's keys keep their order, new keys follow in `over`'s order."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_config(path: str | Path, _chain: tuple[Path, ...] = ()) -> Any:
    """A config file's JSON with its `base` chain resolved: the base (a path relative to this file's folder, which
    may name a base of its own) with this file's keys merged over it (merge_config)."""
    path = Path(path)
    here = path.resolve()
    if here in _chain:
        loop = " -> ".join(p.name for p in (*_chain, here))
        raise UnveilError(f"config {path}: its 'base' chain comes back to itself ({loop})")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UnveilError(f"config {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(raw, dict) or "base" not in raw:
        return raw
    raw = dict(raw)
    base = raw.pop("base")
    if not isinstance(base, str) or not base:
        raise UnveilError(f"config {path}: 'base' must name a config file, got {base!r}")
    base_path = path.parent / base
    if not base_path.is_file():
        raise UnveilError(f"config {path}: its base {base!r} is not a file ({base_path})")
    base_raw = read_config(base_path, (*_chain, here))
    if not isinstance(base_raw, dict):
        raise UnveilError(f"config {base_path} (the base of {path}): the top level must be a JSON object")
    return merge_config(base_raw, raw)


def find_config(path: str | Path) -> Path:
    """The config file: `path` itself, or for a bare name (`c2fdan_lite` or `c2fdan_lite.json`) a shipped one."""
    path = Path(path)
    if path.is_file():
        return path
    name = path.name if path.suffix == ".json" else f"{path.name}.json"
    if path.parent == Path(".") and (SHIPPED / name).is_file():
        return SHIPPED / name
    known = ", ".join(sorted(p.stem for p in SHIPPED.glob("*.json")))
    raise UnveilError(f"config file not found: {path} (shipped configs: {known})")


def load_config(path: str | Path, data_path: str | Path | None = None) -> TrainConfig:
    """Read (bases resolved) and validate a config file; `data_path` overrides its data.path."""
    return parse_config(read_config(find_config(path)), data_path)
