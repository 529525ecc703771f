"""The read side of a prepared dataset (see trainer.prepare) and the occluded-face dataset the trainer iterates.

FaceStore memory-maps faces.bin and landmarks.bin and decodes one crop at a time with cv2.imdecode, so DataLoader
workers share the page cache instead of copying the dataset. The maps are opened lazily in each process.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.errors import UnveilError
from trainer.occlusion import Occlusion, OcclusionSynth
from trainer.prepare import DATASET_FORMAT, DATASET_VERSION

SPLITS = ("train", "val", "all")


class FaceStore:
    """Aligned face crops (uint8 RGB) and their landmarks (crop pixels) of a dataset made by `unveil prepare`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.meta: dict = self._read_meta()
        try:
            with np.load(self.path / "index.npz", allow_pickle=False) as index:
                self._offsets = index["offsets"]
                self._lengths = index["lengths"]
                self._rows = index["rows"]
                self._files = index["files"]
                self._identities = index["identities"]
                self._val = index["val"]
        except (OSError, KeyError, ValueError) as exc:
            raise UnveilError(f"dataset {self.path}: index.npz is missing or corrupt ({exc}); run `unveil prepare` again") from None
        self.crop_size = int(self.meta["crop_size"])
        self.landmark_count = len(self.meta["landmark_indices"])
        self.mirror = np.asarray(self.meta["landmark_mirror"], np.int64)  # flipped point k comes from point mirror[k]
        self._check_sizes()
        self._faces: np.ndarray | None = None
        self._points: np.ndarray | None = None

    def _read_meta(self) -> dict:
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise UnveilError(f"not a prepared dataset (no meta.json): {self.path}")
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            raise UnveilError(f"dataset {self.path}: meta.json is not valid JSON") from None
        if meta.get("format") != DATASET_FORMAT or meta.get("version", 0) > DATASET_VERSION:
            raise UnveilError(f"{self.path} is not an Unveil dataset of version <= {DATASET_VERSION}")
        if not meta.get("complete"):
            raise UnveilError(f"dataset {self.path} is incomplete (prepare was interrupted); run `unveil prepare` again to finish it")
        return meta

    def _check_sizes(self) -> None:
        n = len(self._offsets)
        if not (len(self._lengths) == len(self._rows) == len(self._files) == len(self._val) == n):
            raise UnveilError(f"dataset {self.path}: index.npz arrays disagree in length")
        faces_size = (self.path / "faces.bin").stat().st_size if (self.path / "faces.bin").is_file() else -1
        points_size = (self.path / "landmarks.bin").stat().st_size if (self.path / "landmarks.bin").is_file() else -1
        need_faces = int((self._offsets + self._lengths).max()) if n else 0
        need_points = (int(self._rows.max()) + 1) * self.landmark_count * 2 * 2 if n else 0
        if faces_size < need_faces or points_size < need_points:
            raise UnveilError(f"dataset {self.path}: faces.bin or landmarks.bin is missing or truncated")

    def _open(self) -> None:
        self._faces = np.memmap(self.path / "faces.bin", np.uint8, mode="r")
        points = np.memmap(self.path / "landmarks.bin", np.float16, mode="r")
        usable = len(points) // (self.landmark_count * 2) * self.landmark_count * 2
        self._points = points[:usable].reshape(-1, self.landmark_count, 2)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_faces"] = state["_points"] = None  # reopen in the receiving process instead of pickling the data
        return state

    def __len__(self) -> int:
        return len(self._offsets)

    def _check_index(self, i: int) -> int:
        if not -len(self) <= i < len(self):
            raise IndexError(f"face {i} is out of range for a dataset of {len(self)}")
        return int(i) % len(self)

    def image(self, i: int) -> np.ndarray:
        """uint8 SxSx3 RGB aligned crop."""
        i = self._check_index(i)
        if self._faces is None:
            self._open()
        start = int(self._offsets[i])
        data = self._faces[start: start + int(self._lengths[i])]
        bgr = cv2.imdecode(np.asarray(data), cv2.IMREAD_COLOR)
        if bgr is None or bgr.shape != (self.crop_size, self.crop_size, 3):
            raise UnveilError(f"dataset {self.path}: face {i} ({self._files[i]}) is corrupt")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def landmarks(self, i: int) -> np.ndarray:
        """(K, 2) float32 face-mesh subset (meta['landmark_indices']) in crop pixels."""
        i = self._check_index(i)
        if self._points is None:
            self._open()
        return self._points[int(self._rows[i])].astype(np.float32)

    def file(self, i: int) -> str:
        return str(self._files[self._check_index(i)])

    def identity(self, i: int) -> str:
        return str(self._identities[self._check_index(i)])

    def indices(self, split: str) -> np.ndarray:
        """Dataset indices of a split: 'train', 'val' or 'all'."""
        if split == "train":
            return np.flatnonzero(~self._val)
        if split == "val":
            return np.flatnonzero(self._val)
        if split == "all":
            return np.arange(len(self))
        raise UnveilError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def flip_face(image: np.ndarray, landmarks: np.ndarray, mirror: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal flip of a crop and its landmarks; point k of the result is what the face mesh calls point k.

    Pixel centres sit on integers (as in cv2.warpAffine), so x maps to (S - 1) - x; points swap with their mirror.
    """
    flipped = np.ascontiguousarray(image[:, ::-1])
    points = landmarks[mirror].copy()
    points[:, 0] = (image.shape[1] - 1) - points[:, 0]
    return flipped, points


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float32 3xHxW in [0, 1] (channel order unchanged).

    Plain numpy: torch's intra-op thread pool costs more than it saves on one small crop.
    """
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(np.divide(chw, 255.0, out=chw))


class OccludedFaces(torch.utils.data.Dataset):
    """Items: input (occluded), target (clean), mask (1 = occluded), landmarks, and the occlusion's labels.

    fixed=True: the occlusion (and flip) of an item depends only on (seed, dataset index): the same every epoch and
    for every caller, which is what validation and `unveil eval` need. fixed=False: every call draws a new occlusion
    and flip from a generator seeded by `seed` and one draw of torch's global RNG (as torchvision transforms do), so
    DataLoader workers differ, epochs differ, and `torch.manual_seed(s)` before an item reproduces it exactly.
    """

    def __init__(self, store: FaceStore, split: str, protocol: str, seed: int = 0, fixed: bool = False,
                 flip: bool = True, synth: OcclusionSynth | None = None, synth_options: dict | None = None):
        self.store = store
        self.split = split
        self.items = store.indices(split)
        if len(self.items) == 0:
            raise UnveilError(f"dataset {store.path} has no faces in split {split!r}")
        self.seed, self.fixed, self.flip = seed, fixed, flip
        meta = store.meta
        self.synth = synth or OcclusionSynth(protocol, store.crop_size, seed=seed, template=meta["template"],
                                             margin=meta["margin"], colour_order="rgb", **(synth_options or {}))

    def __len__(self) -> int:
        return len(self.items)

    def _generator(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(torch.randint(0, 2**62, ()).item())])

    def example(self, i: int) -> tuple[np.ndarray, Occlusion, np.ndarray, int]:
        """(clean uint8 RGB crop, its Occlusion, (K, 2) landmarks, dataset index) of item i, before tensor conversion."""
        index = int(self.items[i])
        image, points = self.store.image(index), self.store.landmarks(index)
        if self.fixed:
            rng = np.random.default_rng([self.seed, index, 1])  # the flip draw; the occlusion uses synth(image, index)
        else:
            rng = self._generator()
        if self.flip and rng.random() < 0.5:
            image, points = flip_face(image, points, self.store.mirror)
        occlusion = self.synth(image, index) if self.fixed else self.synth.sample(image, rng)
        return image, occlusion, points, index

    def __getitem__(self, i: int) -> dict:
        image, occlusion, points, index = self.example(i)
        return {
            "input": image_to_tensor(occlusion.image),
            "target": image_to_tensor(image),
            "mask": torch.from_numpy(occlusion.mask[None].astype(np.float32)),
            "landmarks": torch.from_numpy(points),
            "position": occlusion.position,
            "size": occlusion.size,
            "kind": occlusion.kind,
            "index": index,
        }
