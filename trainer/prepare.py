"""`unveil prepare`: detect and align every face of an image folder into a compact training dataset.

Faces are aligned with realtime's own aligner (five face-mesh points -> template, the same warp inference uses),
so training crops match inference crops exactly. The dataset folder holds:

- faces.bin      the aligned crops, JPEG- (or WebP-) encoded, BGR, concatenated;
- landmarks.bin  float16 (N, K, 2): K face-mesh points (LANDMARK_INDICES) in crop pixels, appended per face;
- journal.jsonl  one line per processed source file (ok / no_face / unreadable): what makes a run resumable;
- index.npz      written when every file is done: offsets, lengths, file names, identities, validation flags;
- meta.json      settings, counts, landmark indices and mirror pairs ("complete": true once index.npz is written).

A face is appended to faces.bin and landmarks.bin before its journal line; on resume the two binary files are cut
back to what the journal records, so an interrupted run never leaves a half-written face behind.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from realtime.align import DEFAULT_MARGIN, DEFAULT_TEMPLATE, align_to_template, five_points_from_mesh, transform_points, warp_to_crop
from realtime.errors import UnveilError

DATASET_FORMAT = "unveil-faces"
DATASET_VERSION = 1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# --- the stored landmark subset ----------------------------------------------------------------------------------
# 69 of the 468 face-mesh points: a 68-point-style layout (jaw, brows, nose, eyes, lips) plus the nose tip (1), so the
# five alignment points (33/133, 362/263, 1, 61, 291) are all present. Mirror partners were measured by running the
# face mesh on 31 faces and on their horizontal flips (Hungarian matching of flipped-back points; the mapping is an
# involution and this subset is closed under it). "Left"/"right" below are the image's left/right on a frontal face.
LANDMARK_GROUPS: dict[str, tuple[int, ...]] = {
    "jaw": (162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389),
    "brows": (71, 63, 105, 66, 107, 336, 296, 334, 293, 301),
    "nose": (168, 197, 5, 4, 1, 75, 97, 2, 326, 305),
    "eyes": (33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380),
    "mouth_outer": (61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181),
    "mouth_inner": (78, 82, 13, 312, 308, 317, 14, 87),
}
LANDMARK_INDICES: tuple[int, ...] = tuple(i for group in LANDMARK_GROUPS.values() for i in group)
# (left, right) mesh-index pairs that swap under a horizontal flip; MIDLINE points map to themselves.
MIRROR_PAIRS: tuple[tuple[int, int], ...] = (
    (162, 389), (234, 454), (93, 323), (58, 288), (172, 397), (136, 365), (149, 378), (148, 377),
    (71, 301), (63, 293), (105, 334), (66, 296), (107, 336),
    (75, 305), (97, 326),
    (33, 263), (160, 387), (158, 385), (133, 362), (153, 380), (144, 373),
    (61, 291), (39, 269), (37, 267), (181, 405), (84, 314),
    (78, 308), (82, 312), (87, 317),
)
MIDLINE: tuple[int, ...] = (152, 168, 197, 5, 4, 1, 2, 0, 17, 13, 14)


def landmark_mirror(indices: tuple[int, ...] = LANDMARK_INDICES) -> np.ndarray:
    """(K,) int: position in `indices` of each point's mirror partner (flipping an image maps point k onto mirror[k])."""
    partner = {i: i for i in MIDLINE}
    for left, right in MIRROR_PAIRS:
        partner[left], partner[right] = right, left
    position = {mesh: k for k, mesh in enumerate(indices)}
    missing = [i for i in indices if i not in partner or partner[i] not in position]
    if missing:
        raise ValueError(f"landmark subset is not closed under mirroring: {missing}")
    return np.array([position[partner[i]] for i in indices], np.int64)


# --- settings ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PrepareConfig:
    crop_size: int = 128
    margin: float = DEFAULT_MARGIN
    template: str = DEFAULT_TEMPLATE
    image_format: str = "jpeg"   # "jpeg" or "webp"
    # q80 with optimised Huffman tables: ~3.5 KB per 128px face, 37.7 dB against the raw crop; keeps ~15k faces
    # (crops + landmarks + index) under 60 MiB. q90 would be ~4.9 KB (~74 MiB). WebP q88 is ~3.3 KB at 39.6 dB.
    quality: int = 80
    val_fraction: float = 0.1
    seed: int = 0
    limit: int | None = None     # only the first N files (sorted by name)
    min_score: float = 0.5
    min_eye_distance: float = 8.0  # source pixels between the eye centres; smaller faces would be mostly upsampling
    val_identities: tuple[str, ...] | None = None  # exactly these identities are validation (else val_fraction)

    def stored_settings(self) -> dict:
        """What must stay the same for a resumed run to append to the same files."""
        return {
            "crop_size": self.crop_size, "margin": self.margin, "template": self.template,
            "image_format": self.image_format, "quality": self.quality, "landmark_indices": list(LANDMARK_INDICES),
        }


@dataclass
class PrepareReport:
    images: int = 0            # source files considered (after --limit)
    faces: int = 0             # faces in the dataset
    no_face: int = 0           # readable images without a usable face
    unreadable: int = 0        # files that are not decodable images
    resumed: int = 0           # files already done by an earlier run and not processed again
    processed: int = 0         # files processed by this run
    seconds: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason), for the report


# --- source files --------------------------------------------------------------------------------------------------
def list_images(images_dir: Path) -> list[str]:
    """Image files under `images_dir` (recursive), as sorted POSIX paths relative to it."""
    if not images_dir.is_dir():
        raise UnveilError(f"image folder not found: {images_dir}")
    files = sorted(p.relative_to(images_dir).as_posix() for p in images_dir.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UnveilError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {images_dir}")
    return files


def read_image(path: Path) -> tuple[np.ndarray | None, str]:
    """(uint8 BGR image, "") or (None, why it is unusable). OpenCV refuses truncated JPEGs too."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read ({exc.strerror})"
    if not data:
        return None, "empty file"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None, "not a decodable image"
    return image, ""


def read_identities(csv_path: Path) -> dict[str, str]:
    """file -> identity from a CSV with a header `file,identity`."""
    if not csv_path.is_file():
        raise UnveilError(f"identity file not found: {csv_path}")
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"file", "identity"} <= set(reader.fieldnames):
            raise UnveilError(f"{csv_path} must be a CSV with the columns file,identity")
        return {row["file"]: row["identity"] for row in reader}


# --- one face ------------------------------------------------------------------------------------------------------
def align_face(image_bgr: np.ndarray, mesh: np.ndarray, config: PrepareConfig) -> tuple[np.ndarray, np.ndarray]:
    """(aligned crop, (K, 2) float32 subset landmarks in crop pixels): exactly the runtime's warp."""
    matrix = align_to_template(five_points_from_mesh(mesh), config.crop_size, config.template, config.margin)
    crop = warp_to_crop(image_bgr, matrix, config.crop_size)
    points = transform_points(mesh[list(LANDMARK_INDICES)], matrix).astype(np.float32)
    return crop, points


def encode_crop(crop_bgr: np.ndarray, image_format: str, quality: int) -> bytes:
    if image_format == "jpeg":
        ok, buf = cv2.imencode(".jpg", crop_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_OPTIMIZE, 1])
    elif image_format == "webp":
        ok, buf = cv2.imencode(".webp", crop_bgr, [cv2.IMWRITE_WEBP_QUALITY, quality])
    else:
        raise UnveilError(f"unknown image format {image_format!r} (jpeg or webp)")
    if not ok:
        raise UnveilError(f"could not encode a crop as {image_format}")
    return buf.tobytes()


# --- the dataset files ---------------------------------------------------------------------------------------------
@dataclass
class JournalRecord:
    file: str
    status: str               # "ok", "no_face" or "unreadable"
    offset: int = 0           # ok only: byte range in faces.bin
    length: int = 0
    reason: str = ""          # skipped only


def read_journal(path: Path) -> tuple[list[JournalRecord], int]:
    """Complete records and the byte size of the journal they fill (a torn last line is not counted)."""
    if not path.is_file():
        return [], 0
    records, good_bytes = [], 0
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break
            try:
                raw = json.loads(line)
                record = JournalRecord(raw["f"], raw["s"], raw.get("o", 0), raw.get("n", 0), raw.get("r", ""))
            except (ValueError, KeyError, TypeError):
                break
            records.append(record)
            good_bytes += len(line)
    return records, good_bytes


class DatasetWriter:
    """Append-only writer of faces.bin / landmarks.bin / journal.jsonl that picks up where an earlier run stopped."""

    def __init__(self, out_dir: Path, config: PrepareConfig):
        self.out_dir = out_dir
        self.config = config
        self.point_bytes = len(LANDMARK_INDICES) * 2 * 2  # float16 x, y
        out_dir.mkdir(parents=True, exist_ok=True)
        self._check_settings()
        self.records, journal_bytes = read_journal(out_dir / "journal.jsonl")
        ok = [r for r in self.records if r.status == "ok"]
        faces_end = ok[-1].offset + ok[-1].length if ok else 0
        self._cut(out_dir / "journal.jsonl", journal_bytes)
        self._cut(out_dir / "faces.bin", faces_end)
        self._cut(out_dir / "landmarks.bin", len(ok) * self.point_bytes)
        self.done = {r.file for r in self.records}
        self.face_count = len(ok)
        self.faces_end = faces_end
        self._faces = (out_dir / "faces.bin").open("ab")
        self._points = (out_dir / "landmarks.bin").open("ab")
        self._journal = (out_dir / "journal.jsonl").open("ab")

    def _check_settings(self) -> None:
        meta_path = self.out_dir / "meta.json"
        wanted = self.config.stored_settings()
        if meta_path.is_file():
            try:
                earlier = json.loads(meta_path.read_text())
            except ValueError:
                raise UnveilError(f"{meta_path} is not valid JSON; remove the dataset folder and prepare again") from None
            if earlier.get("format") != DATASET_FORMAT:
                raise UnveilError(f"{self.out_dir} holds something other than an Unveil dataset; choose another output")
            changed = [k for k, v in wanted.items() if earlier.get(k) != v]
            if changed:
                raise UnveilError(f"{self.out_dir} was prepared with other settings ({', '.join(changed)}); "
                                  "use a new output folder or the same settings to resume")
        elif any((self.out_dir / name).exists() for name in ("faces.bin", "journal.jsonl")):
            raise UnveilError(f"{self.out_dir} has dataset files but no meta.json; remove it and prepare again")
        else:
            write_json(meta_path, {"format": DATASET_FORMAT, "version": DATASET_VERSION, "complete": False, **wanted})

    @staticmethod
    def _cut(path: Path, size: int) -> None:
        if path.exists() and path.stat().st_size > size:
            with path.open("r+b") as handle:
                handle.truncate(size)

    def add_face(self, file: str, encoded: bytes, points: np.ndarray) -> None:
        self._faces.write(encoded)
        self._faces.flush()
        self._points.write(points.astype(np.float16).tobytes())
        self._points.flush()
        record = JournalRecord(file, "ok", self.faces_end, len(encoded))
        self.faces_end += len(encoded)
        self.face_count += 1
        self._append(record, {"f": file, "s": "ok", "o": record.offset, "n": record.length})

    def add_skip(self, file: str, status: str, reason: str) -> None:
        self._append(JournalRecord(file, status, reason=reason), {"f": file, "s": status, "r": reason})

    def _append(self, record: JournalRecord, raw: dict) -> None:
        self._journal.write((json.dumps(raw, separators=(",", ":")) + "\n").encode())
        self._journal.flush()
        self.records.append(record)
        self.done.add(record.file)

    def close(self) -> None:
        for handle in (self._faces, self._points, self._journal):
            handle.close()


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


# --- split ---------------------------------------------------------------------------------------------------------
def split_validation(groups: list[str], val_fraction: float, seed: int) -> np.ndarray:
    """(N,) bool, True = validation. Whole groups (identities) go to one side; deterministic for a seed.

    Groups are visited in a seeded order (by hash, so the order does not depend on the input order) and given to
    validation until it holds `val_fraction` of the items; with at least two groups both sides get one.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise UnveilError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    counts: dict[str, int] = {}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    order = sorted(counts, key=lambda g: hashlib.blake2b(f"{seed}:{g}".encode(), digest_size=8).digest())
    target = val_fraction * len(groups)
    val_groups: set[str] = set()
    taken = 0
    for g in order[:-1]:  # never the last group: train keeps at least one
        if taken >= target or val_fraction == 0.0:
            break
        val_groups.add(g)
        taken += counts[g]
    return np.array([g in val_groups for g in groups], bool)


def finalize(out_dir: Path, config: PrepareConfig, images_dir: Path, identity_csv: Path | None,
             journal: list[JournalRecord], wanted: set[str]) -> dict:
    """Write index.npz and the complete meta.json for the journal's records of the `wanted` files."""
    rows = {}  # file -> row in landmarks.bin (the n-th "ok" record of the journal)
    for r in journal:
        if r.status == "ok":
            rows[r.file] = len(rows)
    records = [r for r in journal if r.file in wanted]  # a smaller --limit than before: only those files
    ok = [r for r in records if r.status == "ok"]
    identities = read_identities(identity_csv) if identity_csv else {}
    files = [r.file for r in ok]
    missing = 0
    groups = []
    for f in files:
        ident = identities.get(f, identities.get(Path(f).name)) if identities else None
        if ident is None:
            missing += 1 if identities else 0
            ident = f"file:{f}"  # its own group: identity-disjointness still holds
        groups.append(ident)
    if config.val_identities is not None:
        val = np.array([g in set(config.val_identities) for g in groups], bool)
    else:
        val = split_validation(groups, config.val_fraction, config.seed)
    np.savez_compressed(
        out_dir / "index.npz",
        offsets=np.array([r.offset for r in ok], np.int64),
        lengths=np.array([r.length for r in ok], np.int64),
        rows=np.array([rows[f] for f in files], np.int64),
        files=np.array(files, dtype=np.str_),
        identities=np.array(groups, dtype=np.str_),
        val=val,
    )
    no_face = sum(r.status == "no_face" for r in records)
    unreadable = sum(r.status == "unreadable" for r in records)
    meta = {
        "format": DATASET_FORMAT, "version": DATASET_VERSION, "complete": True, **config.stored_settings(),
        "color_order": "BGR",  # of the encoded crops; FaceStore returns RGB
        "landmark_groups": {k: list(v) for k, v in LANDMARK_GROUPS.items()},
        "landmark_mirror": landmark_mirror().tolist(),
        "landmark_dtype": "float16",
        "source": str(images_dir),
        "identity_file": str(identity_csv) if identity_csv else None,
        "split": {"by": "identity" if identity_csv else "file", "val_fraction": config.val_fraction, "seed": config.seed,
                  "val_identity_list": list(config.val_identities) if config.val_identities is not None else None},
        "counts": {
            "files": len(records), "faces": len(ok), "no_face": no_face, "unreadable": unreadable,
            "train": int((~val).sum()), "val": int(val.sum()),
            "train_identities": len({g for g, v in zip(groups, val) if not v}),
            "val_identities": len({g for g, v in zip(groups, val) if v}),
            "identity_missing": missing,
        },
    }
    write_json(out_dir / "meta.json", meta)
    return meta


# --- the command ---------------------------------------------------------------------------------------------------
def process_file(images_dir: Path, file: str, detector, writer: DatasetWriter, config: PrepareConfig) -> None:
    """Read, detect, align and store one source image, or record why it was skipped."""
    image, why = read_image(images_dir / file)
    if image is None:
        writer.add_skip(file, "unreadable", why)
        return
    faces = [f for f in detector.detect(image) if f.landmarks is not None]
    if not faces:
        writer.add_skip(file, "no_face", "no face found")
        return
    five = five_points_from_mesh(faces[0].landmarks)
    eye_distance = float(np.linalg.norm(five[0] - five[1]))
    if eye_distance < config.min_eye_distance:
        writer.add_skip(file, "no_face", f"face too small (eyes {eye_distance:.1f} px apart)")
        return
    crop, points = align_face(image, faces[0].landmarks, config)
    writer.add_face(file, encode_crop(crop, config.image_format, config.quality), points)


def prepare(images_dir: Path, out_dir: Path, config: PrepareConfig, identity_csv: Path | None = None,
            detector=None, progress: bool = True) -> tuple[PrepareReport, dict]:
    """Detect, align and store every face; resumable. `detector` defaults to realtime's FaceDetector."""
    from tqdm import tqdm

    if config.crop_size < 16:
        raise UnveilError(f"--size must be at least 16, got {config.crop_size}")
    if identity_csv is not None:
        read_identities(identity_csv)  # fail before the long part, not after it
    files = list_images(images_dir)
    if config.limit is not None:
        files = files[: max(config.limit, 0)]
    writer = DatasetWriter(out_dir, config)
    report = PrepareReport(images=len(files))
    todo = [f for f in files if f not in writer.done]
    report.resumed = len(files) - len(todo)
    own_detector = detector is None
    if own_detector:
        from realtime.detect import DetectorConfig, FaceDetector

        detector = FaceDetector(DetectorConfig(max_faces=1, min_score=config.min_score, model_selection=0))
    started = time.perf_counter()
    try:
        with tqdm(total=len(files), initial=report.resumed, unit="img", desc="prepare", disable=not progress,
                  dynamic_ncols=True) as bar:
            for file in todo:
                process_file(images_dir, file, detector, writer, config)
                report.processed += 1
                bar.update()
                if report.processed % 50 == 0:
                    bar.set_postfix_str(f"faces {writer.face_count}", refresh=False)
    finally:
        writer.close()
        if own_detector:
            detector.close()
    report.seconds = time.perf_counter() - started
    wanted = set(files)
    records = [r for r in writer.records if r.file in wanted]
    report.faces = sum(r.status == "ok" for r in records)
    report.no_face = sum(r.status == "no_face" for r in records)
    report.unreadable = sum(r.status == "unreadable" for r in records)
    report.skipped = [(r.file, r.reason) for r in records if r.status != "ok"]
    if report.faces == 0:
        raise UnveilError(f"no usable face in any of the {len(files)} images of {images_dir}")
    meta = finalize(out_dir, config, images_dir, identity_csv, writer.records, wanted)
    return report, meta


def dataset_bytes(out_dir: Path) -> int:
    return sum(p.stat().st_size for p in out_dir.iterdir() if p.is_file())


def format_report(report: PrepareReport, meta: dict, out_dir: Path, max_listed: int = 10) -> str:
    c = meta["counts"]
    lines = [
        f"{report.images} images: {report.faces} faces, {report.no_face} without a usable face, "
        f"{report.unreadable} unreadable ({report.processed} processed now, {report.resumed} done by an earlier run, "
        f"{report.seconds:.1f} s)",
        f"split by {meta['split']['by']}: {c['train']} train ({c['train_identities']} groups), "
        f"{c['val']} val ({c['val_identities']} groups)"
        + (f"; {c['identity_missing']} files not in the identity file (own group each)" if c["identity_missing"] else ""),
        f"dataset: {out_dir} ({dataset_bytes(out_dir) / 2**20:.1f} MiB, {meta['crop_size']}px {meta['image_format']} "
        f"q{meta['quality']}, {len(meta['landmark_indices'])} landmarks)",
    ]
    for file, reason in report.skipped[:max_listed]:
        lines.append(f"  skipped {file}: {reason}")
    if len(report.skipped) > max_listed:
        lines.append(f"  ... and {len(report.skipped) - max_listed} more skipped (see journal.jsonl)")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images_dir", type=Path, metavar="IMAGES_DIR")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DATASET")
    parser.add_argument("--size", type=int, default=128, help="aligned crop size in pixels (default 128)")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                        help=f"crop margin around the template (default {DEFAULT_MARGIN})")
    parser.add_argument("--template", default=DEFAULT_TEMPLATE, help=f"alignment template (default {DEFAULT_TEMPLATE})")
    parser.add_argument("--identity", type=Path, default=None, metavar="CSV",
                        help="CSV file,identity: train/val split keeps each identity on one side")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--val-identities", type=Path, default=None, metavar="TXT",
                        help="a file with one identity per line: exactly these are validation (with --identity)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N images (by name)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    parser.add_argument("--format", dest="image_format", default="jpeg", choices=["jpeg", "webp"])
    parser.add_argument("--quality", type=int, default=80, help="encoder quality 1..100 (default 80)")
    parser.add_argument("--min-score", type=float, default=0.5, help="face detector confidence (default 0.5)")
    parser.add_argument("--min-eye-distance", type=float, default=8.0,
                        help="skip faces whose eyes are closer than this many source pixels (default 8)")


def run(args: argparse.Namespace) -> int:
    from realtime.align import TEMPLATES

    if args.template not in TEMPLATES:
        raise UnveilError(f"unknown template {args.template!r} (known: {', '.join(TEMPLATES)})")
    if not 1 <= args.quality <= 100:
        raise UnveilError(f"--quality must be in 1..100, got {args.quality}")
    val_identities = None
    if args.val_identities is not None:
        if args.identity is None:
            raise UnveilError("--val-identities needs --identity")
        try:
            val_identities = tuple(line.strip() for line in args.val_identities.read_text().splitlines() if line.strip())
        except OSError as exc:
            raise UnveilError(f"cannot read {args.val_identities}: {exc.strerror}") from None
    config = PrepareConfig(crop_size=args.size, margin=args.margin, template=args.template,
                           image_format=args.image_format, quality=args.quality, val_fraction=args.val_fraction,
                           seed=args.seed, limit=args.limit, min_score=args.min_score,
                           min_eye_distance=args.min_eye_distance, val_identities=val_identities)
    report, meta = prepare(args.images_dir, args.output, config, args.identity)
    print(format_report(report, meta, args.output))
    return 0
