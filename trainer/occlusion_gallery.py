"""A picture of every occlusion kind on real aligned faces: `python -m trainer.occlusion_gallery --faces DIR -o PNG`.

Faces are aligned exactly as at inference (mediapipe face mesh -> five points -> realtime.align), one row per face,
one column per kind; each cell is captioned with its position / size label.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from realtime.align import DEFAULT_MARGIN, align_to_template, five_points_from_mesh, warp_to_crop
from realtime.errors import UnveilError
from trainer.occlusion import KINDS, OcclusionSynth

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CAPTION_HEIGHT = 26


def face_image_paths(faces_dir: Path) -> list[Path]:
    if not faces_dir.is_dir():
        raise UnveilError(f"faces directory {faces_dir} does not exist (pass --faces DIR with face photos)")
    paths = sorted(p for p in faces_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise UnveilError(f"faces directory {faces_dir} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return paths


def aligned_faces(paths: list[Path], count: int, crop_size: int, margin: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(aligned BGR crops of the first `count` images where mediapipe finds a face, the other images read)."""
    import mediapipe as mp

    crops: list[np.ndarray] = []
    others: list[np.ndarray] = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        for path in tqdm(paths[: 4 * count], desc="aligning faces", unit="img"):
            image = cv2.imread(str(path))
            if image is None:
                continue
            if len(crops) >= count:
                others.append(image)
                if len(others) >= count:
                    break
                continue
            result = mesh.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            if not result.multi_face_landmarks:
                others.append(image)
                continue
            h, w = image.shape[:2]
            landmarks = np.array([[p.x * w, p.y * h] for p in result.multi_face_landmarks[0].landmark])
            matrix = align_to_template(five_points_from_mesh(landmarks), crop_size, margin=margin)
            crops.append(warp_to_crop(image, matrix, crop_size))
    if not crops:
        raise UnveilError(f"mediapipe found no face in the {len(paths)} images given")
    return crops, others


def caption(cell: np.ndarray, lines: tuple[str, str]) -> np.ndarray:
    """The cell with a two-line white caption above it (kind, then position/size)."""
    bar = np.full((CAPTION_HEIGHT, cell.shape[1], 3), 255, np.uint8)
    for row, text in enumerate(lines):
        cv2.putText(bar, text, (3, 11 + 12 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (30, 30, 30) if row == 0 else
                    (90, 90, 90), 1, cv2.LINE_AA)
    return np.vstack([bar, cell])


def gallery(crops: list[np.ndarray], synth: OcclusionSynth, kinds: tuple[str, ...], seed: int) -> np.ndarray:
    """One row per face, one column per kind, each cell captioned with its kind and position/size."""
    rng = np.random.default_rng(seed)
    rows = []
    for crop in crops:
        cells = []
        for kind in kinds:
            occ = synth.sample(crop, rng, kind=kind)
            label = ("clean", "no occlusion") if kind == "none" else (kind, f"{occ.position}/{occ.size}")
            cells.append(caption(occ.image, label))
        rows.append(np.hstack(cells))
    return np.vstack(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, required=True, help="directory of face photos (e.g. celeba crops)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    parser.add_argument("--count", type=int, default=4, help="number of faces (rows)")
    parser.add_argument("--crop-size", type=int, default=128)
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help="alignment margin (as the models are trained)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=1, help="integer upscale of the picture for viewing")
    args = parser.parse_args(argv)
    try:
        crops, others = aligned_faces(face_image_paths(args.faces), args.count, args.crop_size, args.margin)
        # Textured patches are cut from other photos, as the training set does with its own images.
        synth = OcclusionSynth("mix", args.crop_size, seed=args.seed, margin=args.margin, textures=others or None)
        picture = gallery(crops, synth, KINDS[-1:] + KINDS[:-1], args.seed)
        if args.scale > 1:
            picture = cv2.resize(picture, None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_NEAREST)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(args.output), picture):
            raise UnveilError(f"could not write {args.output}")
    except UnveilError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"wrote {args.output} ({len(crops)} faces x {len(KINDS)} kinds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
