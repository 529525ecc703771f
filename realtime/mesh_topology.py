"""The face mesh's topology: a triangulation of its 468 points and the left/right mirror partner of each point.

mediapipe lists its tessellation as edges and ships no mirror table, so both were measured once
(`python -m realtime.mesh_topology --build FACES_DIR`) and stored in mesh_topology.npz:
- `mean`: the mean mesh in unit aligned-crop coordinates (template unveil5, margin 0.15) over the faces given;
- `mirror`: point k of a horizontally flipped face is point mirror[k] of the original (the mesh run on faces and
  on their flips, points matched by the Hungarian method, the result made an involution);
- `triangles`: a Delaunay triangulation of the mean mesh, which also covers the eye and mouth interiors that the
  tessellation leaves open. The same index triples are used on any face: piecewise-affine warps between two
  faces (face memory) and between a face and its own mirror image (symmetry) map triangle to triangle.
"""
from __future__ import annotations

import argparse
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

TOPOLOGY_FILE = Path(__file__).resolve().parent / "mesh_topology.npz"


@lru_cache(maxsize=1)
def load_topology() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean (468, 2) unit crop coords, mirror (468,) int, triangles (T, 3) int)."""
    with np.load(TOPOLOGY_FILE) as data:
        return data["mean"].astype(np.float64), data["mirror"].astype(np.int64), data["triangles"].astype(np.int64)


def delaunay(points: np.ndarray) -> np.ndarray:
    """(T, 3) vertex indices of the Delaunay triangulation of (N, 2) points."""
    lo = points.min(0) - 1
    hi = points.max(0) + 1
    subdiv = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1))
    for p in points:
        subdiv.insert((float(p[0]), float(p[1])))
    triangles = []
    for t in subdiv.getTriangleList():
        corners = t.reshape(3, 2)
        distance = np.linalg.norm(points[None] - corners[:, None], axis=2)
        nearest = distance.argmin(1)
        if distance[np.arange(3), nearest].max() < 1e-2 and len(set(nearest.tolist())) == 3:
            triangles.append(nearest)  # corners at Subdiv2D's outer bounding vertices are not mesh points
    return np.array(triangles, np.int64)


def build(faces_dir: Path, count: int = 80) -> None:
    from scipy.optimize import linear_sum_assignment  # build-time only

    from realtime.align import align_to_template, five_points_from_mesh, transform_points
    from realtime.detect import FaceDetector

    size = 512
    meshes, mirrors = [], []
    with FaceDetector() as detector:
        for path in sorted(faces_dir.glob("*.jpg"))[: count * 2]:
            image = cv2.imread(str(path))
            if image is None:
                continue
            faces, flipped = detector.detect(image), detector.detect(np.ascontiguousarray(image[:, ::-1]))
            if len(faces) != 1 or len(flipped) != 1:
                continue
            points = faces[0].landmarks.astype(np.float64)
            back = flipped[0].landmarks.astype(np.float64)
            back[:, 0] = image.shape[1] - 1 - back[:, 0]
            cost = np.linalg.norm(points[:, None] - back[None], axis=2)
            rows, cols = linear_sum_assignment(cost)
            mirror = np.empty(len(points), np.int64)
            mirror[cols] = rows  # flipped point j sits on original point mirror[j]
            mirrors.append(mirror)
            matrix = align_to_template(five_points_from_mesh(points), size)
            meshes.append(transform_points(points, matrix) / size)
            if len(meshes) >= count:
                break
    votes = np.stack(mirrors)
    mirror = np.array([np.bincount(votes[:, k]).argmax() for k in range(votes.shape[1])], np.int64)
    for k in range(len(mirror)):  # an involution: keep pairs that agree, points on the midline map to themselves
        if mirror[mirror[k]] != k:
            mirror[k] = k
    mean = np.mean(meshes, axis=0)
    triangles = delaunay(mean * 1000.0)
    np.savez_compressed(TOPOLOGY_FILE, mean=mean.astype(np.float32), mirror=mirror.astype(np.int16),
                        triangles=triangles.astype(np.int16))
    agree = float((votes == mirror[None]).mean())
    print(f"{len(meshes)} faces; mirror agreement {agree:.3f}; {int((mirror == np.arange(len(mirror))).sum())} "
          f"midline points; {len(triangles)} triangles -> {TOPOLOGY_FILE}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", metavar="FACES_DIR", required=True, type=Path)
    parser.add_argument("--count", type=int, default=80)
    args = parser.parse_args()
    build(args.build, args.count)
