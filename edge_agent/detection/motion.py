"""The motion gate: a running-average background on small grey frames decides if the
detector runs at all, so a static scene costs almost nothing, and says where the frame
moved (edge_agent.detection.crop turns that region into the detector's crop)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from edge_agent.detection.settings import MotionConfig
from edge_agent.detection.zones import Box, Point, mask_image

_SPECKS = np.ones((3, 3), np.uint8)  # opening with this drops isolated changed pixels
_GROW = np.ones((5, 5), np.uint8)  # a change since the previous frame also covers its edges


class MotionGate:
    """Says, frame by frame, whether the detector must run.

    It runs when enough pixels (outside the masks) differ from the background, for
    `hold_s` after motion stops (a person who stands still is still there), and at least
    every `refresh_s` (lighting changes, objects that arrived while gated out).
    `region` is the box (relative to the frame) around the pixels that moved in the last
    frame, None when nothing moved. It counts only the pixels that differ from the
    background and also changed since the previous frame: where somebody stood when the gate
    started, or stood long enough to become background and then left, the background keeps
    a ghost for tens of frames (at 1 fps and the default learning rate, about 30 s), and
    the box around ghost and walker together would be most of the frame. Without such
    pixels (a ghost alone) the region is None: the whole frame is looked at.
    """

    def __init__(self, config: MotionConfig, masks: Sequence[Sequence[Point]] = ()) -> None:
        self.config = config
        self.masks = [list(m) for m in masks]
        self._background: NDArray[np.float32] | None = None
        self._previous: NDArray[np.uint8] | None = None
        self._keep: NDArray[np.uint8] | None = None
        self._last_motion = float("-inf")
        self._last_run = float("-inf")
        self.frames = 0
        self.skipped = 0
        self.last_fraction = 0.0
        self.region: Box | None = None

    def should_detect(self, image: NDArray[np.uint8], now: float) -> bool:
        """Feed one BGR frame taken at `now`; True if the detector should look at it."""
        self.frames += 1
        self.region = None
        moving = self._moving(image) if self.config.enabled else True
        if moving:
            self._last_motion = now
        run = (
            moving
            or now - self._last_motion <= self.config.hold_s
            or now - self._last_run >= self.config.refresh_s
            or now < self._last_run  # the clock went back: do not trust the gate
        )
        if run:
            self._last_run = now
        else:
            self.skipped += 1
        return run

    def _moving(self, image: NDArray[np.uint8]) -> bool:
        grey = self._small_grey(image)
        previous, self._previous = self._previous, grey
        if self._background is None or self._background.shape != grey.shape:
            self._background = grey.astype(np.float32)
            height, width = grey.shape
            self._keep = mask_image(self.masks, width, height)
            return True  # first frame: nothing to compare with, look once
        diff = cv2.absdiff(grey, cv2.convertScaleAbs(self._background))
        _, changed = cv2.threshold(diff, self.config.pixel_threshold, 255, cv2.THRESH_BINARY)
        if self._keep is not None:
            changed = cv2.bitwise_and(changed, self._keep)
            area = max(1, int(np.count_nonzero(self._keep)))
        else:
            area = changed.size
        self.last_fraction = float(np.count_nonzero(changed)) / area
        cv2.accumulateWeighted(grey, self._background, self.config.learning_rate)
        if self.last_fraction < self.config.min_area:
            return False
        if previous is not None and previous.shape == grey.shape:
            _, fresh = cv2.threshold(
                cv2.absdiff(grey, previous), self.config.pixel_threshold, 255, cv2.THRESH_BINARY
            )
            changed = cv2.bitwise_and(changed, cv2.dilate(fresh, _GROW))
        if np.count_nonzero(changed):
            self.region = _region(np.asarray(changed, np.uint8))
        return True

    def _small_grey(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        height, width = image.shape[:2]
        small_w = min(self.config.width, width)
        small_h = max(2, round(height * small_w / width))
        small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return np.asarray(cv2.GaussianBlur(grey, (5, 5), 0), dtype=np.uint8)

    @property
    def skip_fraction(self) -> float:
        """Share of frames the detector did not have to look at."""
        return self.skipped / self.frames if self.frames else 0.0


def _region(changed: NDArray[np.uint8]) -> Box:
    """The box around the changed pixels, relative; specks alone do not widen it."""
    solid = cv2.morphologyEx(changed, cv2.MORPH_OPEN, _SPECKS)
    x, y, w, h = cv2.boundingRect(solid if np.count_nonzero(solid) else changed)
    height, width = changed.shape
    return (x / width, y / height, (x + w) / width, (y + h) / height)
