"""Person precision and recall of a detector on a hand-labelled set of images.

The set is a JSON file (tests/data/person_eval.json is the project's): a folder, the IoU a
match needs, and per image its file (and frame, for a video) and its people's pixel boxes.
A detection of label `person` matches the unmatched labelled box it overlaps most, if their
intersection over union is at least the set's `iou`; best scores are matched first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_agent.detection.detector import Detector, box_iou
from edge_agent.detection.zones import Box


@dataclass(frozen=True)
class Labelled:
    """One image of the set and its people (relative boxes)."""

    name: str
    image: NDArray[np.uint8]
    persons: list[Box]


def load_set(path: Path) -> tuple[list[Labelled], float]:
    """The labelled images and the IoU a match needs; FileNotFoundError naming a missing file."""
    spec = json.loads(path.read_text(encoding="utf-8"))
    folder = Path(spec["folder"])
    images = []
    for item in spec["images"]:
        image = _read(folder / item["file"], item.get("frame"))
        h, w = image.shape[:2]
        boxes = [(x1 / w, y1 / h, x2 / w, y2 / h) for x1, y1, x2, y2 in item["persons"]]
        name = item["file"] + (f"#{item['frame']}" if "frame" in item else "")
        images.append(Labelled(name, image, boxes))
    return images, float(spec["iou"])


def _read(path: Path, frame: int | None) -> NDArray[np.uint8]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: install Debian's opencv-doc")
    if frame is None:
        image = cv2.imread(str(path))
    else:
        cap = cv2.VideoCapture(str(path))
        cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
        ok, image = cap.read()
        cap.release()
        if not ok:
            raise FileNotFoundError(f"{path} has no frame {frame}")
    return np.asarray(image, dtype=np.uint8)


def match(found: list[tuple[float, Box]], truth: list[Box], iou: float) -> tuple[int, int, int]:
    """(true positives, false positives, missed) of scored boxes against labelled ones."""
    free = list(range(len(truth)))
    tp = fp = 0
    for _, box in sorted(found, key=lambda f: f[0], reverse=True):
        best = max(free, key=lambda i: box_iou(box, truth[i]), default=None)
        if best is not None and box_iou(box, truth[best]) >= iou:
            free.remove(best)
            tp += 1
        else:
            fp += 1
    return tp, fp, len(free)


def evaluate(detector: Detector, images: list[Labelled], iou: float) -> dict[str, Any]:
    """Precision and recall for `person` over the set, with the counts per image."""
    tp = fp = fn = 0
    per_image = {}
    for item in images:
        found = [(d.score, d.box) for d in detector.detect(item.image) if d.label == "person"]
        t, f, n = match(found, item.persons, iou)
        tp, fp, fn = tp + t, fp + f, fn + n
        per_image[item.name] = {"labelled": len(item.persons), "found": t, "false": f}
    return {
        "person_precision": round(tp / (tp + fp), 3) if tp + fp else 0.0,
        "person_recall": round(tp / (tp + fn), 3) if tp + fn else 0.0,
        "true_positives": tp,
        "false_positives": fp,
        "missed": fn,
        "per_image": per_image,
    }
