"""The smoke test of a new model: run it beside the running one on the same recent frames.

A model is refused (ModelError, whose message is the reply's error) when it raises, when its
output is malformed (a box outside the frame or upside down, a score that is not a number in
[0, 1], a label that is not a string), or when none of the labels it can produce through its
class map is one the camera's rules watch. Otherwise the report says, per label, how many
boxes each model found and how many of them the two agree on (same label, IoU >= 0.5).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_agent.detection.detector import Detection, Detector
from edge_agent.errors import ModelError
from edge_agent.models.shadow import compare

BLANK = "blank (nothing recorded yet)"
Frames = Sequence[tuple[NDArray[np.uint8], str]]


def malformed(found: object) -> str | None:
    """Why a detector's output is not a list of well-formed detections (None if it is)."""
    if not isinstance(found, list):
        return f"returned {type(found).__name__}, not a list of detections"
    for d in found:
        if not isinstance(d, Detection) or not isinstance(d.label, str) or not d.label:
            return f"returned {d!r}, not a labelled detection"
        if not (isinstance(d.score, float | int) and math.isfinite(d.score) and 0 <= d.score <= 1):
            return f"score {d.score!r} of a {d.label} box is not a number in [0, 1]"
        x1, y1, x2, y2 = d.box
        if (
            not all(math.isfinite(v) and -0.001 <= v <= 1.001 for v in d.box)
            or x2 <= x1
            or y2 <= y1
        ):
            return f"box {d.box!r} of a {d.label} is not inside the frame"
    return None


def _run(detector: Detector, image: NDArray[np.uint8], which: str) -> list[Detection]:
    try:
        found: object = detector.detect(image)
    except Exception as e:  # noqa: BLE001 - any failure of a new model refuses it
        raise ModelError(f"{which} failed: {type(e).__name__}: {e}") from e
    problem = malformed(found)
    if problem is not None:
        raise ModelError(f"{which} {problem}")
    assert isinstance(found, list)
    return found


def smoke_test(
    camera: str,
    new: Detector,
    current: Detector | None,
    frames: Frames,
    watched: set[str],
) -> dict[str, Any]:
    """Run `new` (and `current`, when the camera has one) on `frames`; the comparison, or
    ModelError saying why the new model is refused."""
    labels = new.labels()
    if watched and not labels & watched:
        raise ModelError(
            f"smoke test on {camera}: the model's labels {sorted(labels) or '(none)'} include "
            f"none of those the camera's rules watch ({', '.join(sorted(watched))}); "
            "check its class map"
        )
    if not frames:
        frames = [(np.zeros((360, 640, 3), dtype=np.uint8), BLANK)]
    counts: dict[str, Counter[str]] = {}
    for image, source in frames:
        found = _run(new, image, f"smoke test on {camera} ({source}): the new model")
        mine: list[Detection] = []
        if current is not None:
            try:
                mine = _run(current, image, "the running model")
            except ModelError:
                mine = []  # the running model's trouble is no reason to refuse the new one
        for label, tally in compare(mine, found).items():
            counts.setdefault(label, Counter()).update(tally)
    matched = sum(c["matched"] for c in counts.values())
    seen = matched + sum(c["only_current"] + c["only_shadow"] for c in counts.values())
    return {
        "frame": frames[0][1],
        "frames": [source for _, source in frames],
        "detections": sum(c["matched"] + c["only_shadow"] for c in counts.values()),
        "labels": sorted(labels),
        "usable": sorted(labels & watched),
        "compared": {
            label: {
                "new": c["matched"] + c["only_shadow"],
                "running": c["matched"] + c["only_current"],
                "agree": c["matched"],
            }
            for label, c in sorted(counts.items())
        },  # fmt: skip
        "agreement": round(matched / seen, 4) if seen else None,
    }
