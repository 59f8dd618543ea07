"""Export labelled alert images as an ultralytics (YOLO) dataset, split by camera and day.

Each labelled sample frame (asked of an edge for labelling) is one clean image, and each
labelled alert contributes one image: the clean frame the edge uploaded beside the
snapshot (`frame.jpg`) when there is one, else the snapshot itself (which carries the boxes
the edge drew; the manifest marks such images `annotated`). Train and validation are split
by whole (site, camera, UTC day) groups, so frames of one camera on one day, and therefore
of one minute, never fall on both sides; which groups go to validation is decided by a
seeded hash, so the same labels give the same split.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from central.errors import InvalidInputError
from central.models.labels import CLASS_NAME
from central.storage.db import CentralDatabase

SOURCES = ("frame.jpg", "snapshot.jpg")  # preferred first
SAMPLE_SOURCE = "sample"  # a frame an edge sent on request (sample_frames), always clean
DEFAULT_LICENCE = (
    "Surveillance footage of a supervised enterprise, collected under food-safety regulation; "
    "for training the regulator's own models only, not for publication."
)


@dataclass(frozen=True)
class LabelledImage:
    """One labelled alert with the stored image it labels."""

    alert_id: str
    site_id: str
    camera_id: str
    captured_at: float
    verdict: str
    boxes: list[dict[str, Any]]
    labelled_by: str
    labelled_at: float
    path: Path
    source: str
    sha256: str

    @property
    def group(self) -> str:
        """The split unit: site, camera and UTC day."""
        day = datetime.fromtimestamp(self.captured_at, UTC).date().isoformat()
        return f"{self.site_id}/{self.camera_id}/{day}"


@dataclass
class ExportResult:
    """What an export wrote and what it left out (with why)."""

    out: Path
    counts: dict[str, dict[str, Any]]
    skipped: Counter[str] = field(default_factory=Counter)


def parse_classes(text: str) -> list[str]:
    """`a,b,c` as class names in index order; InvalidInputError naming a bad one."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InvalidInputError("--classes: give at least one class name")
    for name in names:
        if not CLASS_NAME.match(name):
            raise InvalidInputError(f"--classes: {name!r} is not a class name (lower_case_words)")
    if len(set(names)) != len(names):
        raise InvalidInputError("--classes: a class is listed twice")
    return names


def labelled_images(database: CentralDatabase) -> list[LabelledImage]:
    """Every labelled alert and sample frame whose image is stored, oldest first."""
    with database.read() as db:
        rows = list(
            db.query(
                "select l.alert_id, l.verdict, l.boxes, l.username, l.labelled_at, "
                "a.site_id, a.camera_id, a.start, m.name, m.path, m.sha256 "
                "from alert_labels l join alerts a on a.id = l.alert_id "
                "join media m on m.event_id = l.alert_id "
                f"where m.name in ({', '.join('?' for _ in SOURCES)}) "
                "order by a.start, l.alert_id",
                list(SOURCES),
            )
        )
        samples = list(
            db.query(
                "select l.batch_id, l.name, l.verdict, l.boxes, l.username, l.labelled_at, "
                "f.site_id, f.camera_id, f.ts, m.path, m.sha256 from sample_labels l "
                "join sample_frames f on f.batch_id = l.batch_id and f.name = l.name "
                "join media m on m.event_id = l.batch_id and m.name = l.name order by f.ts"
            )
        )
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        kept = best.get(row["alert_id"])
        if kept is None or SOURCES.index(row["name"]) < SOURCES.index(kept["name"]):
            best[row["alert_id"]] = dict(row)
    images = [
        LabelledImage(
            alert_id=r["alert_id"],
            site_id=r["site_id"],
            camera_id=r["camera_id"] or "",
            captured_at=float(r["start"]),
            verdict=r["verdict"],
            boxes=json.loads(r["boxes"]),
            labelled_by=r["username"] or "",
            labelled_at=float(r["labelled_at"]),
            path=Path(r["path"]),
            source=r["name"],
            sha256=r["sha256"],
        )
        for r in best.values()
    ] + [
        LabelledImage(
            alert_id=f"sample-{r['batch_id']}-{Path(r['name']).stem}",
            site_id=r["site_id"],
            camera_id=r["camera_id"],
            captured_at=float(r["ts"]),
            verdict=r["verdict"],
            boxes=json.loads(r["boxes"]),
            labelled_by=r["username"] or "",
            labelled_at=float(r["labelled_at"]),
            path=Path(r["path"]),
            source=SAMPLE_SOURCE,
            sha256=r["sha256"],
        )
        for r in samples
    ]
    return sorted(images, key=lambda i: (i.captured_at, i.alert_id))


def split_groups(groups: set[str], val_fraction: float, seed: str) -> set[str]:
    """The groups that go to validation: the lowest seeded hashes, at least one of two."""
    if not groups or val_fraction <= 0:
        return set()
    ranked = sorted(groups, key=lambda g: hashlib.sha256(f"{seed}\0{g}".encode()).hexdigest())
    count = math.ceil(len(ranked) * val_fraction)
    count = min(max(count, 1), len(ranked) - 1) if len(ranked) > 1 else 0
    return set(ranked[:count])


def yolo_lines(image: LabelledImage, classes: list[str]) -> tuple[list[str], Counter[str]]:
    """The label file's lines (class cx cy w h, relative) and the boxes left out, by class."""
    index = {name: i for i, name in enumerate(classes)}
    lines: list[str] = []
    dropped: Counter[str] = Counter()
    for box in image.boxes:
        cls = str(box["cls"])
        if cls not in index:
            dropped[cls] += 1
            continue
        x1, y1, x2, y2 = (float(box[k]) for k in ("x1", "y1", "x2", "y2"))
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        lines.append(f"{index[cls]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines, dropped


def export_dataset(
    database: CentralDatabase,
    classes: list[str],
    out: Path,
    *,
    val_fraction: float = 0.2,
    seed: str = "fsv",
    licence: str = DEFAULT_LICENCE,
) -> ExportResult:
    """Write images/, labels/, data.yaml and manifest.json under `out` (new or empty)."""
    if not 0.0 <= val_fraction < 1.0:
        raise InvalidInputError("--val-fraction must lie in [0, 1)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInputError(f"{out} exists and is not an empty folder; choose a new one")
    images = labelled_images(database)
    val_groups = split_groups({i.group for i in images}, val_fraction, seed)
    result = ExportResult(out, {s: _empty_counts(classes) for s in ("train", "val")})
    provenance: list[dict[str, Any]] = []
    for image in images:
        split = "val" if image.group in val_groups else "train"
        lines, dropped = yolo_lines(image, classes)
        for cls, n in dropped.items():
            result.counts[split]["boxes_left_out"][cls] = (
                result.counts[split]["boxes_left_out"].get(cls, 0) + n
            )
        reason = _skip_reason(image, lines)
        if reason is not None:
            result.skipped[reason] += 1
            continue
        name = f"{image.alert_id}.jpg"
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image.path, out / "images" / split / name)
        (out / "labels" / split / f"{image.alert_id}.txt").write_text(
            "".join(line + "\n" for line in lines), encoding="ascii"
        )
        _count(result.counts[split], lines, classes)
        provenance.append(_provenance(image, split, name, licence))
    _write_meta(out, classes, result, provenance, val_fraction, seed, licence, val_groups)
    return result


def _skip_reason(image: LabelledImage, lines: list[str]) -> str | None:
    if image.verdict == "true" and not lines:
        return "true verdict without a box of the chosen classes"
    try:
        data = image.path.read_bytes()
    except OSError:
        return "image file missing"
    if hashlib.sha256(data).hexdigest() != image.sha256:
        return "image changed since it was stored (hash differs)"
    return None


def _empty_counts(classes: list[str]) -> dict[str, Any]:
    return {
        "images": 0,
        "background_images": 0,
        "boxes": {c: 0 for c in classes},
        "boxes_left_out": {},
    }


def _count(counts: dict[str, Any], lines: list[str], classes: list[str]) -> None:
    counts["images"] += 1
    if not lines:
        counts["background_images"] += 1
    for line in lines:
        counts["boxes"][classes[int(line.split()[0])]] += 1


def _provenance(image: LabelledImage, split: str, name: str, licence: str) -> dict[str, Any]:
    return {
        "file": f"images/{split}/{name}",
        "split": split,
        "alert_id": None if image.source == SAMPLE_SOURCE else image.alert_id,
        "sample": image.alert_id if image.source == SAMPLE_SOURCE else None,
        "site_id": image.site_id,
        "camera_id": image.camera_id,
        "captured_at": datetime.fromtimestamp(image.captured_at, UTC).isoformat(),
        "source": image.source,
        "annotated": image.source == "snapshot.jpg",
        "sha256": image.sha256,
        "verdict": image.verdict,
        "labelled_by": image.labelled_by,
        "labelled_at": datetime.fromtimestamp(image.labelled_at, UTC).isoformat(),
        "licence": licence,
    }


def _write_meta(
    out: Path,
    classes: list[str],
    result: ExportResult,
    provenance: list[dict[str, Any]],
    val_fraction: float,
    seed: str,
    licence: str,
    val_groups: set[str],
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    names = "".join(f"  {i}: {name}\n" for i, name in enumerate(classes))
    (out / "data.yaml").write_text(
        f"path: {out.resolve()}\ntrain: images/train\nval: images/val\nnames:\n{names}",
        encoding="utf-8",
    )
    groups = sorted(
        {p["site_id"] + "/" + p["camera_id"] + "/" + p["captured_at"][:10] for p in provenance}
    )
    manifest = {
        "format": "ultralytics-yolo",
        "created_at": datetime.fromtimestamp(time.time(), UTC).isoformat(),
        "classes": classes,
        "split": {
            "by": "site/camera/UTC day",
            "val_fraction": val_fraction,
            "seed": seed,
            "val_groups": sorted(g for g in groups if g in val_groups),
            "train_groups": sorted(g for g in groups if g not in val_groups),
        },
        "licence": licence,
        "counts": result.counts,
        "skipped": dict(result.skipped),
        "images": provenance,
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
