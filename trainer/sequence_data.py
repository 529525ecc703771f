"""Short synthetic video sequences made from still aligned faces, for training recurrent blind networks.

A sequence is T frames of one aligned face drifting by a random walk of small similarities (what alignment leaves of
real head motion) with an occluder over it:
- "bar":      a long tilted bar of a random colour sliding across the crop (a pole, a door frame, a passing arm);
- "subtitle": a line of random letters scrolling sideways over the lower face, fill and outline colours random
              (sometimes one colour, so the line is a solid band, as temporal-eval paints it);
- "hand" / "rect": trainer.occlusion's hand or rectangle translating at a constant velocity;
- "static":   an occluder of the data protocol (e.g. "mix") that stays on the face and moves with it, so the
              network keeps its blind-model skills on glasses, masks, text... while it learns to use the state.
These painters are the trainer's own (random colours, sizes, angles and speeds); trainer/occluders/moving.py has
the fixed ones temporal-eval measures with.

Items (`SequenceFaces[i]`): "input" (occluded) and "target" (clean) T x 3 x S x S in [0, 1], "mask" T x 1 x S x S
(1 = occluded), "changes" T x 2 x 3 (the warp from frame t-1's crop to frame t's, identity at t = 0), "kind".
`flatten_sequences` turns a collated batch of them into what trainer/train.py's losses and metrics take.
"""
from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np
import torch

from realtime.errors import UnveilError
from trainer.networks.recurrent import _compose, _similarity, warp_batch

SEQUENCE_KINDS = ("bar", "subtitle", "hand", "rect", "static")
DEFAULT_KIND_WEIGHTS = {"bar": 0.3, "subtitle": 0.3, "hand": 0.1, "rect": 0.1, "static": 0.2}
_SUPERSAMPLE = 4

# A layer painter: frame index t -> (alpha float32 SxS in [0, 1], colour float32 SxSx3 0..255), in crop pixels.
Layer = Callable[[int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class SequenceConfig:
    length: int = 4                        # frames per sequence (the unroll length)
    motion: float = 0.01                   # face drift per frame, fraction of the crop (std of the shift)
    speed: tuple[float, float] = (0.015, 0.06)  # occluder speed range, fraction of the crop per frame
    kinds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_KIND_WEIGHTS))

    @classmethod
    def from_dict(cls, raw: Any, where: str = "data.sequence") -> "SequenceConfig":
        if not isinstance(raw, dict):
            raise UnveilError(f"config: {where} must be an object")
        unknown = sorted(set(raw) - {"length", "motion", "speed", "kinds"})
        if unknown:
            raise UnveilError(f"config: {where} has unknown keys: {', '.join(unknown)}")
        length = raw.get("length", cls.length)
        if not isinstance(length, int) or isinstance(length, bool) or length < 2:
            raise UnveilError(f"config: {where}.length must be an integer >= 2, got {length!r}")
        motion = raw.get("motion", cls.motion)
        if not isinstance(motion, (int, float)) or not 0.0 <= motion <= 0.2:
            raise UnveilError(f"config: {where}.motion must be a number in 0..0.2, got {motion!r}")
        speed = raw.get("speed", list(cls.speed))
        if (not isinstance(speed, list) or len(speed) != 2 or not all(isinstance(v, (int, float)) for v in speed)
                or not 0.0 <= speed[0] <= speed[1] <= 0.5):
            raise UnveilError(f"config: {where}.speed must be [low, high] with 0 <= low <= high <= 0.5, got {speed!r}")
        kinds = raw.get("kinds", dict(DEFAULT_KIND_WEIGHTS))
        if not isinstance(kinds, dict) or set(kinds) - set(SEQUENCE_KINDS):
            raise UnveilError(f"config: {where}.kinds must map some of {', '.join(SEQUENCE_KINDS)} to weights, got {kinds!r}")
        if any(not isinstance(w, (int, float)) or w < 0 for w in kinds.values()) or sum(kinds.values()) <= 0:
            raise UnveilError(f"config: {where}.kinds weights must be non-negative numbers, not all zero")
        return cls(length, float(motion), (float(speed[0]), float(speed[1])), {k: float(w) for k, w in kinds.items()})


# --- occluder painters -----------------------------------------------------------------------------------------------
def random_colour(rng: np.random.Generator) -> np.ndarray:
    """Any colour, with some bias to greys, whites and darks (poles, subtitles, sleeves)."""
    if rng.random() < 0.4:
        return np.full(3, rng.uniform(0, 255), np.float32) + rng.uniform(-12, 12, 3).astype(np.float32)
    return rng.uniform(0, 255, 3).astype(np.float32)


def shaded(size: int, colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A colour layer with a gentle linear shading in a random direction (real occluders are not flat)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1) - 0.5
    angle = rng.uniform(0, 2 * math.pi)
    gain = 1.0 + rng.uniform(0.0, 0.25) * (math.cos(angle) * xs + math.sin(angle) * ys)
    return np.clip(colour[None, None, :] * gain[..., None], 0, 255).astype(np.float32)


def _coverage(size: int, polygons: list[np.ndarray]) -> np.ndarray:
    big = np.zeros((size * _SUPERSAMPLE, size * _SUPERSAMPLE), np.uint8)
    for poly in polygons:
        cv2.fillPoly(big, [np.rint(np.asarray(poly) * _SUPERSAMPLE).astype(np.int32)], 255, lineType=cv2.LINE_8)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _velocity(rng: np.random.Generator, size: int, speed: tuple[float, float], angle_deg: float) -> np.ndarray:
    v = rng.uniform(*speed) * size * (1.0 if rng.random() < 0.5 else -1.0)
    a = math.radians(angle_deg)
    return np.array([v * math.cos(a), v * math.sin(a)])


def bar_layer(size: int, rng: np.random.Generator, length: int, speed: tuple[float, float]) -> Layer:
    """A bar 0.06-0.22 of the crop wide, longer than the crop, tilted up to 25 degrees from vertical, sliding
    sideways so that it crosses the face during the sequence."""
    width = rng.uniform(0.06, 0.22) * size
    tilt = rng.uniform(-25, 25)
    horizontal = rng.random() < 0.15  # sometimes a horizontal bar sliding up or down
    velocity = _velocity(rng, size, speed, 90.0 if horizontal else 0.0)
    # start so that the middle of the sequence is near the face centre
    centre = np.array([size / 2, size / 2]) + rng.uniform(-0.25, 0.25, 2) * size - velocity * (length - 1) / 2
    a = math.radians(tilt + (90.0 if horizontal else 0.0))
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    corners = np.array([[-width / 2, -size], [width / 2, -size], [width / 2, size], [-width / 2, size]]) @ rot.T
    colour = shaded(size, random_colour(rng), rng)

    def at(t: int) -> tuple[np.ndarray, np.ndarray]:
        return _coverage(size, [corners + centre + velocity * t]), colour

    return at


def subtitle_layer(size: int, rng: np.random.Generator, length: int, speed: tuple[float, float]) -> Layer:
    """A line of random letters 0.05-0.14 of the crop tall over the lower face, scrolling sideways; letters and
    their outline in two random colours, or one (a solid band, like temporal-eval's white subtitle)."""
    words = [''.join(rng.choice(list(string.ascii_letters), int(rng.integers(2, 8)))) for _ in range(int(rng.integers(3, 7)))]
    text = " ".join(words)
    font = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX)[int(rng.integers(3))]
    height = rng.uniform(0.05, 0.14) * size * _SUPERSAMPLE
    scale = height / 22.0
    thickness = max(1, int(round(rng.uniform(0.08, 0.16) * 22.0 * scale)))
    (text_w, text_h), base = cv2.getTextSize(text, font, scale, thickness)
    outline = int(round(rng.uniform(0.5, 2.0) * thickness))
    pad = outline + thickness + 2
    ink = np.zeros((text_h + base + 2 * pad, text_w + 2 * pad), np.uint8)
    cv2.putText(ink, text, (pad, pad + text_h), font, scale, 255, thickness, cv2.LINE_AA)
    band = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * outline + 1, 2 * outline + 1)))
    fill_colour = random_colour(rng) if rng.random() < 0.6 else np.array([245.0, 245.0, 245.0], np.float32)
    edge_colour = fill_colour if rng.random() < 0.4 else random_colour(rng) * rng.uniform(0.0, 0.5)
    # the patch in crop pixels, scrolled by a sub-pixel translation each frame
    patch_alpha = cv2.resize(band, None, fx=1 / _SUPERSAMPLE, fy=1 / _SUPERSAMPLE, interpolation=cv2.INTER_AREA)
    patch_fill = cv2.resize(ink, None, fx=1 / _SUPERSAMPLE, fy=1 / _SUPERSAMPLE, interpolation=cv2.INTER_AREA)
    patch_alpha = patch_alpha.astype(np.float32) / 255.0
    patch_fill = patch_fill.astype(np.float32) / 255.0
    colour_patch = (edge_colour[None, None] * (1 - patch_fill[..., None]) + fill_colour[None, None] * patch_fill[..., None])
    velocity = _velocity(rng, size, (speed[0], speed[1] * 0.7), 0.0)
    width = patch_alpha.shape[1]
    y = rng.uniform(0.55, 0.9) * size - patch_alpha.shape[0] / 2
    x0 = rng.uniform(-width + 0.3 * size, 0.7 * size)  # some of the line is on the crop from the start

    def at(t: int) -> tuple[np.ndarray, np.ndarray]:
        m = np.array([[1.0, 0.0, x0 + velocity[0] * t], [0.0, 1.0, y]])
        alpha = cv2.warpAffine(patch_alpha, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
        colour = cv2.warpAffine(colour_patch.astype(np.float32), m, (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        return alpha, colour

    return at


def moving_painted_layer(painter: Callable, size: int, rng: np.random.Generator, length: int,
                         speed: tuple[float, float]) -> Layer:
    """trainer.occlusion's hand / rectangle, translating at a constant velocity in a random direction."""
    from trainer.occluders.layers import move_layer

    alpha, colour = painter(size, rng)
    velocity = _velocity(rng, size, speed, rng.uniform(0, 360))
    start = -velocity * (length - 1) / 2  # centred on where it was painted in the middle of the sequence

    def at(t: int) -> tuple[np.ndarray, np.ndarray]:
        shift = start + velocity * t
        return move_layer(alpha, colour, np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]]))

    return at


# --- sequences ------------------------------------------------------------------------------------------------------
@dataclass
class FaceSequence:
    clean: np.ndarray      # (T, S, S, 3) uint8
    occluded: np.ndarray   # (T, S, S, 3) uint8
    masks: np.ndarray      # (T, S, S) float32, 1 = occluded
    changes: np.ndarray    # (T, 2, 3) float32, frame t-1's crop -> frame t's (identity at t = 0)
    kind: str


def make_sequence(face: np.ndarray, rng: np.random.Generator, config: SequenceConfig, kind: str | None = None,
                  static_synth=None) -> FaceSequence:
    """One sequence from an aligned face (S x S x 3 uint8). `static_synth` (an OcclusionSynth) paints the
    "static" kind; without one that kind is not drawn."""
    from trainer.occluders.layers import composite
    from trainer.occluders.painters import paint_hand, paint_rect

    size = face.shape[0]
    kinds = {k: w for k, w in config.kinds.items() if k != "static" or static_synth is not None}
    if kind is None:
        names = sorted(kinds)
        weights = np.array([kinds[k] for k in names], np.float64)
        kind = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    length = config.length
    if kind == "static":
        occlusion = static_synth.sample(face, rng)
        base, base_mask = occlusion.image, occlusion.mask
        layer = None
    else:
        base, base_mask = face, None
        makers = {"bar": bar_layer, "subtitle": subtitle_layer,
                  "hand": lambda *a: moving_painted_layer(paint_hand, *a),
                  "rect": lambda *a: moving_painted_layer(paint_rect, *a)}
        if kind not in makers:
            raise UnveilError(f"unknown sequence occluder {kind!r}; choose one of {', '.join(SEQUENCE_KINDS)}")
        layer = makers[kind](size, rng, length, config.speed)
    pose = _similarity(np.zeros(2), 0.0, 0.0, size)
    clean, occluded, masks, changes = [], [], [], []
    for t in range(length):
        change = np.array([[1.0, 0, 0], [0, 1.0, 0]]) if t == 0 else _similarity(
            rng.normal(0.0, config.motion * size, 2), rng.normal(0.0, 1.0), rng.normal(0.0, config.motion / 2), size)
        pose = _compose(change, pose)
        frame = cv2.warpAffine(face, pose, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        if layer is None:  # the occluder is on the face: it moves with it
            covered = cv2.warpAffine(base, pose, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            moved = cv2.warpAffine(base_mask, pose, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            mask = ((moved > 0.0) & (covered != frame).any(axis=2)).astype(np.float32)
            covered = np.where(mask[..., None] > 0, covered, frame)
        else:
            alpha, colour = layer(t)
            covered, mask = composite(frame, alpha, colour)
        clean.append(frame)
        occluded.append(covered)
        masks.append(mask)
        changes.append(change)
    return FaceSequence(np.stack(clean), np.stack(occluded), np.stack(masks).astype(np.float32),
                        np.stack(changes).astype(np.float32), kind)


def _frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))).float().div_(255.0)


class SequenceFaces(torch.utils.data.Dataset):
    """Sequences from the faces of one split of a FaceStore; like trainer.data.OccludedFaces, fixed=True makes an
    item depend only on (seed, index) (validation), fixed=False draws from torch's global RNG (training)."""

    def __init__(self, store, split: str, config: SequenceConfig, protocol: str = "mix", seed: int = 0,
                 fixed: bool = False, flip: bool = True, synth_options: dict | None = None):
        from trainer.occlusion import OcclusionSynth

        self.store, self.config, self.seed, self.fixed, self.flip = store, config, seed, fixed, flip
        self.items = store.indices(split)
        if len(self.items) == 0:
            raise UnveilError(f"dataset {store.path} has no faces in split {split!r}")
        meta = store.meta
        self.synth = OcclusionSynth(protocol, store.crop_size, seed=seed, template=meta["template"],
                                    margin=meta["margin"], colour_order="rgb", **(synth_options or {}))

    def __len__(self) -> int:
        return len(self.items)

    def sequence(self, i: int) -> FaceSequence:
        index = int(self.items[i])
        if self.fixed:
            rng = np.random.default_rng([self.seed, index, 7])
        else:
            rng = np.random.default_rng([self.seed, int(torch.randint(0, 2**62, ()).item())])
        face = self.store.image(index)
        if self.flip and rng.random() < 0.5:
            face = np.ascontiguousarray(face[:, ::-1])
        return make_sequence(face, rng, self.config, static_synth=self.synth)

    def __getitem__(self, i: int) -> dict:
        seq = self.sequence(i)
        return {
            "input": _frames_to_tensor(seq.occluded),
            "target": _frames_to_tensor(seq.clean),
            "mask": torch.from_numpy(seq.masks[:, None]),
            "changes": torch.from_numpy(seq.changes),
            "kind": seq.kind,
        }


def is_sequence_batch(batch: dict) -> bool:
    return "changes" in batch and batch["input"].dim() == 5


def flatten_sequences(batch: dict) -> dict:
    """A collated batch of N sequences of T frames -> per-frame entries (N*T) x ... in (sequence, time) order for the
    ordinary losses and metrics, plus "sequence_input" (N x T x 3 x S x S) and "changes" for SequenceUnroll, and
    "target_previous" (the clean frame t-1 warped onto t; frame t itself at t = 0) and "has_previous" (0 at t = 0)
    for the temporal loss."""
    images, target, changes = batch["input"], batch["target"], batch["changes"]
    n, steps = images.shape[:2]
    previous = [target[:, 0]] + [warp_batch(target[:, t - 1], changes[:, t]) for t in range(1, steps)]
    has_previous = torch.ones(n, steps, 1, 1, 1, dtype=images.dtype, device=images.device)
    has_previous[:, 0] = 0.0
    flat = {
        "sequence_input": images,
        "changes": changes,
        "input": images.flatten(0, 1),
        "target": target.flatten(0, 1),
        "mask": batch["mask"].flatten(0, 1),
        "target_previous": torch.stack(previous, dim=1).flatten(0, 1),
        "has_previous": has_previous.flatten(0, 1),
    }
    if "kind" in batch:
        flat["kind"] = [k for k in batch["kind"] for _ in range(steps)]
    return flat
