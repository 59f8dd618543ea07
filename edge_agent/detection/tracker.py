"""IoU tracking: the same object across frames keeps one id, so rules see durations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge_agent.detection.detector import Detection
from edge_agent.detection.zones import Box


@dataclass(frozen=True)
class TrackedObject:
    """What rules see of a tracked object at one instant."""

    track_id: int
    label: str
    score: float
    box: Box
    first_seen: float
    last_seen: float


@dataclass
class _Track:
    track_id: int
    label: str
    score: float
    box: Box
    first_seen: float
    last_seen: float
    hits: int = 1

    def snapshot(self) -> TrackedObject:
        return TrackedObject(
            self.track_id, self.label, self.score, self.box, self.first_seen, self.last_seen
        )


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> NDArray[np.float64]:
    """Intersection over union of every box in `a` with every box in `b`."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    aa = np.asarray(a, dtype=np.float64)[:, None, :]
    bb = np.asarray(b, dtype=np.float64)[None, :, :]
    w = np.clip(np.minimum(aa[..., 2], bb[..., 2]) - np.maximum(aa[..., 0], bb[..., 0]), 0, None)
    h = np.clip(np.minimum(aa[..., 3], bb[..., 3]) - np.maximum(aa[..., 1], bb[..., 1]), 0, None)
    inter = w * h
    area_a = (aa[..., 2] - aa[..., 0]) * (aa[..., 3] - aa[..., 1])
    area_b = (bb[..., 2] - bb[..., 0]) * (bb[..., 3] - bb[..., 1])
    result: NDArray[np.float64] = inter / np.maximum(area_a + area_b - inter, 1e-12)
    return result


class IouTracker:
    """Greedy IoU association per label; a track is reported after `min_hits` sightings and
    kept for `max_age_s` after its last one, so a missed frame does not end a presence.

    At a few frames per second people move far between frames, hence a low IoU threshold;
    appearance features (DeepSORT) would cost a second network per box on a 2-core box.
    """

    def __init__(self, iou_threshold: float = 0.2, max_age_s: float = 3.0, min_hits: int = 2):
        self.iou_threshold = iou_threshold
        self.max_age_s = max_age_s
        self.min_hits = min_hits
        self._tracks: list[_Track] = []
        self._next_id = 1

    def update(self, detections: Sequence[Detection], now: float) -> list[TrackedObject]:
        """Feed one frame's detections; returns the confirmed tracks alive at `now`."""
        matched_tracks: set[int] = set()
        matched_dets: set[int] = set()
        ious = iou_matrix([t.box for t in self._tracks], [d.box for d in detections])
        pairs = sorted(
            ((ious[ti, di], ti, di) for ti in range(ious.shape[0]) for di in range(ious.shape[1])),
            reverse=True,
        )
        for overlap, ti, di in pairs:
            if overlap < self.iou_threshold:
                break
            track, det = self._tracks[ti], detections[di]
            if ti in matched_tracks or di in matched_dets or track.label != det.label:
                continue
            matched_tracks.add(ti)
            matched_dets.add(di)
            track.box, track.score, track.last_seen = det.box, det.score, now
            track.hits += 1
        for di, det in enumerate(detections):
            if di not in matched_dets:
                self._tracks.append(_Track(self._next_id, det.label, det.score, det.box, now, now))
                self._next_id += 1
        self._tracks = [
            t
            for t in self._tracks
            if now - t.last_seen <= self.max_age_s
            and (t.hits >= self.min_hits or t.last_seen == now)
        ]
        return [t.snapshot() for t in self._tracks if t.hits >= self.min_hits]

    def reset(self) -> None:
        """Forget every track (after a stream reconnect)."""
        self._tracks = []
