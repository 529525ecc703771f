"""The person split of ../shared/data's clips (splits/people.json): train, calibrate, report.

The segmenter learns from `train` people; its threshold and every hand-set number are tuned on `calibrate` people;
benchmarks report on `report` people, on whom nothing is tuned. A person's clips are all on one side. Torch-free.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from realtime.errors import UnveilError

SPLIT_FILE = Path(__file__).resolve().parents[1] / "splits" / "people.json"
SIDES = ("train", "calibrate", "report")


@dataclass(frozen=True)
class SplitClip:
    path: str             # relative to ../shared/data, e.g. "videos_more/NAME.mp4"
    person: str
    side: str             # train | calibrate | report
    occluder: str | None  # a real occluder over the face in the clip itself (never a clean clip)


def load_split(path: Path = SPLIT_FILE) -> list[SplitClip]:
    try:
        people = json.loads(Path(path).read_text())["people"]
    except (OSError, ValueError, KeyError) as exc:
        raise UnveilError(f"cannot read the person split {path}: {exc}") from None
    clips = []
    for person, entry in people.items():
        if entry.get("side") not in SIDES:
            raise UnveilError(f"{path}: person {person!r} has side {entry.get('side')!r}, not one of {SIDES}")
        clips.extend(SplitClip(c, person, entry["side"], entry.get("occluder")) for c in entry["clips"])
    return clips


def clips_of(side: str, *, clean: bool | None = None, path: Path = SPLIT_FILE) -> list[SplitClip]:
    """The clips of one side; `clean=True` only those without a real occluder, `False` only those with one."""
    return [c for c in load_split(path)
            if c.side == side and (clean is None or (c.occluder is None) == clean)]
