"""Shadow mode: a new model runs beside the current one on the same frames, raising nothing.

Each frame both models ran on is compared class by class: a box of the shadow model with
the same label and IoU >= 0.5 as a box of the current one is `matched`, the rest are
`only_current` or `only_shadow`. The tally covers one UTC day and starts again at midnight;
the heartbeat carries today's counts, so central can show agreement before anyone switches.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from edge_agent.detection.detector import Detection, box_iou
from fsv_contract.payloads import ShadowClass, ShadowStats

MATCH_IOU = 0.5


def compare(
    current: Sequence[Detection], shadow: Sequence[Detection], threshold: float = MATCH_IOU
) -> dict[str, Counter[str]]:
    """Per class: matched, only_current and only_shadow counts of one frame (greedy by IoU)."""
    out: dict[str, Counter[str]] = {}
    for label in {d.label for d in current} | {d.label for d in shadow}:
        mine = [d.box for d in current if d.label == label]
        theirs = [d.box for d in shadow if d.label == label]
        pairs = sorted(
            ((box_iou(a, b), i, j) for i, a in enumerate(mine) for j, b in enumerate(theirs)),
            reverse=True,
        )
        used_a: set[int] = set()
        used_b: set[int] = set()
        for score, i, j in pairs:
            if score < threshold:
                break
            if i not in used_a and j not in used_b:
                used_a.add(i)
                used_b.add(j)
        out[label] = Counter(
            matched=len(used_a),
            only_current=len(mine) - len(used_a),
            only_shadow=len(theirs) - len(used_b),
        )
    return out


class ShadowTally:
    """Today's comparison of one camera's shadow model with its running model."""

    def __init__(self, camera: str, model: str) -> None:
        self.camera = camera
        self.model = model
        self._lock = threading.Lock()
        self.day = ""
        self.frames = 0
        self.errors = 0
        self.classes: dict[str, Counter[str]] = {}

    def _roll(self, ts: float) -> None:
        day = datetime.fromtimestamp(ts, UTC).date().isoformat()
        if day != self.day:
            self.day, self.frames, self.errors, self.classes = day, 0, 0, {}

    def add(self, ts: float, current: Sequence[Detection], shadow: Sequence[Detection]) -> None:
        """Count one frame both models ran on."""
        found = compare(current, shadow)
        with self._lock:
            self._roll(ts)
            self.frames += 1
            for label, counts in found.items():
                self.classes.setdefault(label, Counter()).update(counts)

    def failed(self, ts: float) -> None:
        """Count a frame the shadow model failed on."""
        with self._lock:
            self._roll(ts)
            self.errors += 1

    def stats(self, current: str | None) -> ShadowStats:
        """The heartbeat's view of the tally."""
        with self._lock:
            day = self.day or datetime.now(UTC).date().isoformat()
            return ShadowStats(
                camera=self.camera,
                model=self.model,
                current=current,
                day=day,
                frames=self.frames,
                errors=self.errors,
                classes=[
                    ShadowClass(
                        name=label[:64],
                        matched=c["matched"],
                        only_current=c["only_current"],
                        only_shadow=c["only_shadow"],
                    )
                    for label, c in sorted(self.classes.items())[:256]
                ],
            )
