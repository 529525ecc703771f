"""Symmetric faces and an asymmetry score from the 468-point face mesh (the landmark baseline of issue #17).

The mid-line. The mesh's measured mirror map (`realtime.mesh_topology`) says which point is the left/right twin of
which. The mid-line is the line whose reflection best maps every mesh point onto its twin (least squares over all
468 points: an orthogonal 2x2 transform with determinant -1 about the points' centroid, solved like Procrustes), so
it follows the face's own tilt and position instead of assuming an upright, centred face.

The symmetric face. Each point is averaged with the reflection of its twin, S_k = (P_k + R(P_twin(k))) / 2, which
is exactly symmetric about the mid-line. The face is warped piecewise-affinely from its mesh P onto S (the mesh's
896 triangles plus a ring of fixed anchor points around the face, so hair and background bend smoothly and nothing
tears at the edge of the face), and the warped face A is blended with its own mirror image R(A) inside the face
oval: `mode="blend"` averages the two halves (the "average half-face"), `left` / `right` keep one image half and
mirror it onto the other. The result is symmetric about the mid-line up to interpolation.

The asymmetry score (per face, both reported):
- `shape` (the score): mean over the 468 points of |P_k - R(P_twin(k))|, the distance between a point and where
  its twin lands when reflected about the mid-line, in per cent of the inter-ocular distance (eye centre to eye
  centre). 0 for a perfectly symmetric face. A 2-D measure: a turned head (yaw) reads as asymmetry too.
- `appearance`: mean |A - R(A)| over the face oval after the geometry was made symmetric, in grey levels (0-255,
  channels averaged): what differs between the halves in skin, light and features once their shapes agree.
`asymmetry_map` is that per-pixel difference moved back onto the input face (for a heat-map overlay).

For aligned crops (the network path and training targets): the alignment template is mirror-symmetric, so the
crop's vertical centre line is the mid-line; `mirror_halves` mirrors each half of a crop about it and
`mirror_error` measures how far a crop is from its own mirror image.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from realtime.align import estimate_similarity, five_points_from_mesh
from realtime.errors import UnveilError
from realtime.mesh_topology import delaunay, load_topology
from realtime.mesh_warp import warp_triangles
from realtime.regions import FACE_OVAL, polygon_mask

MODES = ("blend", "left", "right")
ANCHOR_COUNT = 24          # fixed points on a circle around the face: the warp fades to identity there
ANCHOR_CENTRE = (0.5, 0.59)  # in unit aligned-crop coordinates (the mean mesh's centre)
ANCHOR_RADIUS = 0.62        # unit crop; the mean mesh reaches ~0.33 from the centre
FEATHER_IOD = 0.3           # the symmetric face fades in over this much inside the face oval (inter-ocular distances)


@dataclass(frozen=True)
class MidLine:
    """A line in pixel coordinates: a point on it and its unit direction (pointing down the face)."""

    point: np.ndarray       # (2,)
    direction: np.ndarray   # (2,) unit

    @property
    def normal(self) -> np.ndarray:
        return np.array([-self.direction[1], self.direction[0]])

    def reflect(self, points: np.ndarray) -> np.ndarray:
        """Mirror (N, 2) points about the line."""
        pts = np.asarray(points, np.float64)
        n = self.normal
        return pts - 2.0 * ((pts - self.point) @ n)[:, None] * n[None]

    def matrix(self, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """2x3 affine of the reflection in coordinates shifted by -offset (a box's pixels); its own inverse."""
        n = self.normal
        linear = np.eye(2) - 2.0 * np.outer(n, n)
        p = self.point - np.asarray(offset, np.float64)
        return np.concatenate([linear, (p - linear @ p)[:, None]], axis=1)

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) signed distance of points from the line (> 0 on the side of image-right for an upright face)."""
        return (np.asarray(points, np.float64) - self.point) @ -self.normal

    @property
    def angle_deg(self) -> float:
        """Tilt of the mid-line from the image vertical, degrees (0 = upright)."""
        return float(np.degrees(np.arctan2(-self.direction[0], self.direction[1])))


def fit_midline(points: np.ndarray, mirror: np.ndarray | None = None) -> MidLine:
    """The line whose reflection best maps each point onto its twin (least squares): P_twin(k) ~ R(P_k)."""
    if mirror is None:
        _, mirror, _ = load_topology()
    a = np.asarray(points, np.float64)
    if a.ndim != 2 or a.shape[1] != 2 or len(a) != len(mirror):
        raise UnveilError(f"the mid-line needs ({len(mirror)}, 2) mesh points, got {a.shape}")
    b = a[mirror]
    centre = a.mean(0)   # the twin map is a permutation: both point sets have the same centroid, a fixed point
    cov = (b - centre).T @ (a - centre)
    u, _, vt = np.linalg.svd(cov)
    fix = np.diag([1.0, -np.linalg.det(u) * np.linalg.det(vt)])  # det = -1: a reflection, never a rotation
    reflection = u @ fix @ vt
    # the reflection's mirror axis is its eigenvector of eigenvalue +1
    values, vectors = np.linalg.eigh((reflection + reflection.T) / 2.0)
    direction = vectors[:, int(np.argmax(values))]
    if direction[1] < 0:
        direction = -direction  # point down the face (image y grows downwards)
    return MidLine(centre, direction / np.linalg.norm(direction))


def inter_ocular(points: np.ndarray) -> float:
    five = five_points_from_mesh(np.asarray(points, np.float64))
    return float(np.linalg.norm(five[1] - five[0]))


def symmetric_points(points: np.ndarray, line: MidLine, mirror: np.ndarray | None = None) -> np.ndarray:
    """S_k = (P_k + R(P_twin(k))) / 2: every point halfway to where its twin's reflection lands."""
    if mirror is None:
        _, mirror, _ = load_topology()
    pts = np.asarray(points, np.float64)
    return (pts + line.reflect(pts[mirror])) / 2.0


def shape_asymmetry(points: np.ndarray, line: MidLine | None = None, mirror: np.ndarray | None = None) -> float:
    """Mean |P_k - R(P_twin(k))| over the mesh, in per cent of the inter-ocular distance (0 = symmetric)."""
    if mirror is None:
        _, mirror, _ = load_topology()
    pts = np.asarray(points, np.float64)
    line = line or fit_midline(pts, mirror)
    distance = np.linalg.norm(pts - line.reflect(pts[mirror]), axis=1).mean()
    return float(100.0 * distance / max(inter_ocular(pts), 1e-6))


@lru_cache(maxsize=1)
def extended_topology() -> tuple[np.ndarray, np.ndarray]:
    """(anchors (K, 2) in unit crop coordinates, triangles over the 468 mesh points followed by the K anchors)."""
    mean, _, _ = load_topology()
    angles = np.linspace(0.0, 2.0 * np.pi, ANCHOR_COUNT, endpoint=False)
    anchors = np.stack([ANCHOR_CENTRE[0] + ANCHOR_RADIUS * np.cos(angles),
                        ANCHOR_CENTRE[1] + ANCHOR_RADIUS * np.sin(angles)], axis=1)
    triangles = delaunay(np.concatenate([mean, anchors]) * 1000.0)
    return anchors, triangles


def anchor_points(points: np.ndarray) -> np.ndarray:
    """The fixed ring around this face, in its pixels: the unit anchors moved like the mean mesh onto the face."""
    mean, _, _ = load_topology()
    anchors, _ = extended_topology()
    matrix = estimate_similarity(mean, np.asarray(points, np.float64))
    return anchors @ matrix[:, :2].T + matrix[:, 2]


def warp_without_slivers(source: np.ndarray, source_points: np.ndarray, target_points: np.ndarray,
                         triangles: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-affine warp of `source` (frame pixels) whose `source_points` land on `target_points`, over the
    target `box`; returns (image over the box, bool valid map). Slivers (under half a pixel of area) and folded
    triangles map a few pixels from far away: they are left out and their pixels filled from their neighbours."""
    target_areas, source_areas = signed_areas(target_points, triangles), signed_areas(source_points, triangles)
    usable = (np.abs(target_areas) > 0.5) & (np.sign(target_areas) == np.sign(source_areas))
    warped, valid = warp_triangles(source, source_points, target_points, triangles, box, usable=usable,
                                   border=cv2.BORDER_REPLICATE)
    return fill_gaps(warped, valid)


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    t = np.asarray(points, np.float64)[triangles]
    a, b = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    return 0.5 * (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])


def fill_gaps(image: np.ndarray, valid: np.ndarray, size: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Pixels missed between rasterised triangles (thin slivers) take the mean of their valid neighbours."""
    kernel = np.ones((size, size), np.uint8)
    gaps = ~valid & (cv2.morphologyEx(valid.astype(np.uint8), cv2.MORPH_CLOSE, kernel) > 0)
    if not gaps.any():
        return image, valid
    weight = cv2.boxFilter(valid.astype(np.float32), -1, (size, size), normalize=False)
    masked = np.where(valid[..., None] if image.ndim == 3 else valid, image, 0).astype(np.float32)
    total = cv2.boxFilter(masked, -1, (size, size), normalize=False)
    mean = total / np.maximum(weight[..., None] if image.ndim == 3 else weight, 1e-6)
    filled = image.copy()
    filled[gaps] = mean[gaps].astype(image.dtype) if image.dtype != np.uint8 else np.clip(np.rint(mean[gaps]), 0, 255).astype(np.uint8)
    return filled, valid | gaps


def inward_ramp(region: np.ndarray, width_px: float) -> np.ndarray:
    """float32 weight: 0 outside `region` and on its edge, rising linearly to 1 at `width_px` inside it."""
    inside = np.asarray(region, bool).astype(np.uint8)
    if not inside.any():
        return np.zeros(inside.shape, np.float32)
    distance = cv2.distanceTransform(np.pad(inside, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    return np.clip(distance / max(float(width_px), 1.0), 0.0, 1.0).astype(np.float32)


@dataclass
class FaceSymmetry:
    """One face made symmetric: what to paste, where, and its asymmetry."""

    box: tuple[int, int, int, int]    # x0, y0, x1, y1 in the frame
    image: np.ndarray                 # (h, w, 3) uint8 the box of the output (face symmetric, surroundings bent)
    weight: np.ndarray                # (h, w) float32 where `image` replaces the frame (1 = fully)
    asymmetry_map: np.ndarray         # (h, w) float32 grey levels, on the *input* face; 0 outside it
    line: MidLine                     # the mid-line in frame pixels
    points: np.ndarray                # (468, 2) the input mesh
    symmetric: np.ndarray             # (468, 2) the symmetric mesh
    shape: float                      # the asymmetry score: % of the inter-ocular distance
    appearance: float                 # mean grey-level difference between the halves, 0-255

    def paste(self, frame: np.ndarray) -> None:
        """Blend into `frame` (in place)."""
        x0, y0, x1, y1 = self.box
        region = frame[y0:y1, x0:x1].astype(np.float32)
        w = self.weight[..., None]
        frame[y0:y1, x0:x1] = np.clip(np.rint(region * (1.0 - w) + self.image.astype(np.float32) * w), 0, 255).astype(np.uint8)


def symmetrize_face(image: np.ndarray, points: np.ndarray, mode: str = "blend") -> FaceSymmetry:
    """Make one face of a BGR frame symmetric about its mid-line (see the module's docstring)."""
    if mode not in MODES:
        raise UnveilError(f"unknown symmetrize mode {mode!r} (choose {', '.join(MODES)})")
    _, mirror, _ = load_topology()
    _, triangles = extended_topology()
    pts = np.asarray(points, np.float64)
    line = fit_midline(pts, mirror)
    sym = symmetric_points(pts, line, mirror)
    anchors = anchor_points(pts)
    h_img, w_img = image.shape[:2]
    lo = np.floor(np.concatenate([anchors, pts]).min(0)).astype(int)
    hi = np.ceil(np.concatenate([anchors, pts]).max(0)).astype(int) + 1
    box = (max(int(lo[0]), 0), max(int(lo[1]), 0), min(int(hi[0]), w_img), min(int(hi[1]), h_img))
    x0, y0, x1, y1 = box
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise UnveilError("the face lies outside the image")
    # A: the face warped onto the symmetric mesh (with the ring of anchors fixed)
    warped, valid = warp_without_slivers(image, np.concatenate([pts, anchors]), np.concatenate([sym, anchors]), triangles, box)
    original = image[y0:y1, x0:x1]
    base = np.where(valid[..., None], warped, original)
    # R(A): its mirror image about the mid-line (the reflection is its own inverse)
    reflection = line.matrix(offset=(x0, y0))
    bw, bh = x1 - x0, y1 - y0
    mirrored = cv2.warpAffine(base, reflection, (bw, bh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mirrored_ok = cv2.warpAffine(valid.astype(np.uint8), reflection, (bw, bh), flags=cv2.INTER_NEAREST,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    oval = polygon_mask(sym[list(FACE_OVAL)] - (x0, y0), (bh, bw))
    both = oval & valid & mirrored_ok
    a = base.astype(np.float32)
    r = mirrored.astype(np.float32)
    if mode == "blend":
        face = (a + r) / 2.0
    else:
        ys, xs = np.mgrid[0:bh, 0:bw]
        side = line.signed_distance(np.stack([xs.ravel() + x0, ys.ravel() + y0], 1)).reshape(bh, bw)
        iod = inter_ocular(pts)
        keep = np.clip(0.5 - side / max(0.04 * iod, 1.0), 0.0, 1.0)   # 1 on the image-left side, soft at the line
        if mode == "right":
            keep = 1.0 - keep
        face = a * keep[..., None] + r * (1.0 - keep[..., None])
    face_weight = inward_ramp(both, FEATHER_IOD * inter_ocular(pts))
    out = a * (1.0 - face_weight[..., None]) + face * face_weight[..., None]
    out_image = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    # paste weight: 1 where the warp is valid, fading to 0 at the anchor ring so the frame joins without a seam
    weight = valid.astype(np.float32)
    difference = np.abs(a - r).mean(axis=2)
    appearance = float(difference[both].mean()) if both.any() else 0.0
    sym_map = np.where(both, difference, 0.0).astype(np.float32)
    # the map back onto the input face: warp it from the symmetric mesh to the input mesh
    back, back_ok = warp_without_slivers(sym_map, np.concatenate([sym, anchors]) - (x0, y0),
                                   np.concatenate([pts, anchors]), triangles, box)
    asymmetry_map = np.where(back_ok, back, 0.0).astype(np.float32)
    return FaceSymmetry(box=box, image=out_image, weight=weight, asymmetry_map=asymmetry_map, line=line,
                        points=pts, symmetric=sym, shape=shape_asymmetry(pts, line, mirror), appearance=appearance)


def symmetrize_frame(image: np.ndarray, faces_points: list[np.ndarray], mode: str = "blend"
                     ) -> tuple[np.ndarray, list[FaceSymmetry]]:
    """Every face of a frame made symmetric (each from the input frame, pasted in turn); (output, per-face)."""
    out = image.copy()
    results = []
    for points in faces_points:
        result = symmetrize_face(image, points, mode)
        result.paste(out)
        results.append(result)
    return out, results


def asymmetry_heatmap(image: np.ndarray, results: list[FaceSymmetry], full_scale: float = 60.0,
                      alpha: float = 0.6) -> np.ndarray:
    """The input with each face's asymmetry map drawn over it (JET colours, `full_scale` grey levels = red)."""
    out = image.copy()
    for result in results:
        x0, y0, x1, y1 = result.box
        amap = result.asymmetry_map
        colours = cv2.applyColorMap(np.clip(amap * (255.0 / full_scale), 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
        on = polygon_mask(result.points[list(FACE_OVAL)] - (x0, y0), amap.shape)
        a = np.where(on, alpha, 0.0).astype(np.float32)[..., None]
        region = out[y0:y1, x0:x1].astype(np.float32)
        out[y0:y1, x0:x1] = np.clip(region * (1 - a) + colours.astype(np.float32) * a, 0, 255).astype(np.uint8)
    return out


# ------------------------------------------------------------------------------------------------ aligned crops


def mirror_halves(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two symmetric faces of an aligned crop: its image-left half mirrored onto the right, and the image-right
    half mirrored onto the left (about the crop's vertical centre line, which the template puts on the mid-line).
    Works on (..., H, W, C) arrays with the width on axis -2. Both are exactly equal to their own mirror image."""
    arr = np.asarray(crop)
    width = arr.shape[-2]
    half = width // 2
    flipped = arr[..., ::-1, :]
    left = arr.copy()
    left[..., width - half:, :] = flipped[..., width - half:, :]
    right = arr.copy()
    right[..., :half, :] = flipped[..., :half, :]
    return left, right


def mirror_error(crop: np.ndarray, region: np.ndarray | None = None) -> float:
    """Mean |crop - its mirror image| about the vertical centre line, in [0, 1] (0 = exactly symmetric); over a
    bool `region` (H, W) when given."""
    arr = np.asarray(crop, np.float32) / (255.0 if np.asarray(crop).dtype == np.uint8 else 1.0)
    diff = np.abs(arr - arr[:, ::-1])
    if diff.ndim == 3:
        diff = diff.mean(axis=2)
    if region is not None:
        return float(diff[np.asarray(region, bool)].mean()) if np.any(region) else 0.0
    return float(diff.mean())


def symmetric_region(region: np.ndarray) -> np.ndarray:
    """A crop-space bool region made mirror-symmetric (union with its mirror image)."""
    region = np.asarray(region, bool)
    return region | region[:, ::-1]


# ------------------------------------------------------------------------------------------------ whole frames

METHODS = ("landmark", "vae")
SHIPPED_VAE = "symmetry-vae"   # realtime/models/symmetry-vae.onnx, when shipped
CROP_SIZE = 128                # aligned crops written by --crops for the landmark method
VAE_FADE = 0.08               # the network's face fades in over this much of the crop inside the face oval
MIRROR_INSET = 0.09            # the mirror error is measured on the face oval less this rim (crop fraction), where
                               # the landmark method's symmetric face is fully in (it fades in over 0.3 inter-ocular distances)


@dataclass
class FaceReport:
    """One face of one frame: its asymmetry (from the mesh, whatever the method) and its symmetric crop."""

    face: int                # index of the face in the frame (best detection first)
    shape: float             # asymmetry score: % of the inter-ocular distance
    appearance: float        # grey levels between the halves after the shapes agree
    tilt_deg: float          # the mid-line's tilt from the image vertical
    crop: np.ndarray         # (S, S, 3) uint8 BGR aligned crop of the symmetric face
    mirror_error: float      # mean |crop - its mirror image| over the crop's face region, grey levels
    change: float            # mean |output - input| over the face oval, grey levels: how much was changed
    symmetry: FaceSymmetry   # the landmark analysis (mid-line, symmetric mesh, asymmetry map)


def crop_face_region(points_crop: np.ndarray, size: int, inset: float = 0.0) -> np.ndarray:
    """The face oval of crop-space mesh points, made mirror-symmetric (where a symmetric crop is pasted and
    compared); `inset` (crop fraction) erodes it, leaving out the feathered rim."""
    region = symmetric_region(polygon_mask(np.asarray(points_crop)[list(FACE_OVAL)], (size, size)))
    px = int(round(inset * size))
    if px > 0:
        region = cv2.erode(region.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)).astype(bool)
    return region


def upright_on_midline(matrix: np.ndarray, line: MidLine, size: int) -> np.ndarray:
    """The crop warp `matrix` turned and shifted so that the mid-line becomes the crop's vertical centre line
    x = (size - 1) / 2, about which a crop is mirrored (the template is symmetric only to ~0.5 px)."""
    ends = np.stack([line.point, line.point + 50.0 * line.direction])
    p = ends @ matrix[:, :2].T + matrix[:, 2]
    d = p[1] - p[0]
    angle = np.arctan2(d[0], d[1])          # from the crop's +y axis towards +x
    c, s = np.cos(angle), np.sin(angle)
    turn = np.array([[c, -s], [s, c]])      # turns d onto +y
    linear = turn @ matrix[:, :2]
    shift = turn @ (matrix[:, 2] - p[0]) + p[0]
    moved = np.concatenate([linear, shift[:, None]], axis=1)
    moved[0, 2] += (size - 1) / 2.0 - (moved[0, :2] @ line.point + moved[0, 2])
    return moved


class FrameSymmetrizer:
    """Makes every face of a frame symmetric with the landmark baseline or a `symmetrization` network.

    The network path: the face is aligned to the model's contract (template, margin, crop size), the network returns
    a crop symmetric about its vertical centre line, and that crop is pasted back over the face oval made
    symmetric, feathered. The asymmetry scores always come from the mesh (they describe the input face)."""

    def __init__(self, method: str = "landmark", model: str | None = None, provider: str = "cpu", mode: str = "blend",
                 threads: int = 0):
        if method not in METHODS:
            raise UnveilError(f"unknown method {method!r} (choose {', '.join(METHODS)})")
        if mode not in MODES:
            raise UnveilError(f"unknown symmetrize mode {mode!r} (choose {', '.join(MODES)})")
        self.method, self.mode = method, mode
        self.runner = None
        if method == "vae":
            from realtime.models import available_models, resolve_model
            from realtime.runner import ModelRunner

            if model is None and SHIPPED_VAE not in available_models():
                raise UnveilError(f"no VAE model is shipped ({SHIPPED_VAE}); pass --model PATH.onnx (train one with "
                                  "`unveil train-vae`) or use --method landmark")
            self.runner = ModelRunner(str(resolve_model(model or SHIPPED_VAE)), provider=provider, threads=threads)
            kind = self.runner.contract.kind
            if kind != "symmetrization":
                raise UnveilError(f"{self.runner.path.name} is a {kind} model; --method vae needs a symmetrization model")

    def __call__(self, image: np.ndarray, faces_points: list[np.ndarray]) -> tuple[np.ndarray, list[FaceReport]]:
        from realtime.align import align_to_template, paste_back, transform_points, warp_to_crop

        out = image.copy()
        reports = []
        for k, points in enumerate(faces_points):
            pts = np.asarray(points, np.float64)
            landmark = symmetrize_face(image, pts, self.mode)
            if self.runner is None:
                landmark.paste(out)
                # the crop aligned on the symmetric mesh: its mid-line is the crop's vertical centre line
                matrix = upright_on_midline(align_to_template(five_points_from_mesh(landmark.symmetric), CROP_SIZE),
                                            landmark.line, CROP_SIZE)
                crop = warp_to_crop(out, matrix, CROP_SIZE)
                region = crop_face_region(transform_points(landmark.symmetric, matrix), CROP_SIZE, MIRROR_INSET)
            else:
                c = self.runner.contract
                size = c.crop_size
                matrix = align_to_template(five_points_from_mesh(pts), size, c.template, c.margin)
                crop = self.runner.run([warp_to_crop(image, matrix, size)]).images[0]
                oval = polygon_mask(transform_points(pts, matrix)[list(FACE_OVAL)], (size, size))
                measured = crop_face_region(transform_points(pts, matrix), size, MIRROR_INSET)
                # pasted where the face is on both sides of the mid-line, fading in well inside the oval: a network
                # trained on face-only targets darkens towards the face's edge
                weight = inward_ramp(oval & oval[:, ::-1], VAE_FADE * size)
                out, _ = paste_back(out, crop, weight, matrix)
                region = measured
            oval = polygon_mask(pts[list(FACE_OVAL)], image.shape[:2])
            change = float(np.abs(out.astype(np.float32) - image).mean(axis=2)[oval].mean()) if oval.any() else 0.0
            reports.append(FaceReport(face=k, shape=landmark.shape, appearance=landmark.appearance,
                                      tilt_deg=landmark.line.angle_deg, crop=crop,
                                      mirror_error=255.0 * mirror_error(crop, region), change=change,
                                      symmetry=landmark))
        return out, reports

    def close(self) -> None:
        self.runner = None
