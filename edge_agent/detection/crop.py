"""Motion-region crops: the detector looks at the part of the frame that moves.

When motion is confined to a region, the detector runs on a crop around it (padded, at
least a minimum size, grown to the model's input shape so that letterboxing wastes little)
instead of the whole frame shrunk to the model's input: the moving region is seen at a
higher resolution for the same inference cost (the model's input size is fixed). Boxes are
mapped back to frame coordinates. Where nothing moved, what was seen before is still there
(as when the motion gate skips a whole frame), so earlier detections outside the crop are
carried over. Motion spread over the frame, or a crop that would be most of it, means the
whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from edge_agent.detection.detector import Detection, Detector, Image
from edge_agent.detection.zones import Box

EDGE_TOLERANCE = 0.01  # a box this close (relative to the crop) to a cut edge was cut by it


@dataclass(frozen=True)
class CropSettings:
    """How a motion region becomes a crop (MotionConfig's crop_* fields)."""

    pad: float = 0.25  # the region grows by this share of its size on every side
    min_side: float = 0.5  # the crop's shorter side is at least this share of the frame's
    max_area: float = 0.6  # a crop larger than this share of the frame: use the whole frame


@dataclass(frozen=True)
class Crop:
    """A rectangle of a frame in pixels (x1, y1 inclusive; x2, y2 exclusive)."""

    x1: int
    y1: int
    x2: int
    y2: int
    frame_width: int
    frame_height: int

    @property
    def box(self) -> Box:
        """The crop relative to the frame."""
        w, h = self.frame_width, self.frame_height
        return (self.x1 / w, self.y1 / h, self.x2 / w, self.y2 / h)

    def to_frame(self, box: Box) -> Box:
        """A box relative to the crop, relative to the frame."""
        cw, ch = self.x2 - self.x1, self.y2 - self.y1
        w, h = self.frame_width, self.frame_height
        return (
            (self.x1 + box[0] * cw) / w,
            (self.y1 + box[1] * ch) / h,
            (self.x1 + box[2] * cw) / w,
            (self.y1 + box[3] * ch) / h,
        )

    def cut_edges(self, box: Box) -> bool:
        """True if a box (relative to the crop) touches an edge of the crop that is not an
        edge of the frame: the object may go on outside the crop."""
        t = EDGE_TOLERANCE
        return (
            (self.x1 > 0 and box[0] <= t)
            or (self.y1 > 0 and box[1] <= t)
            or (self.x2 < self.frame_width and box[2] >= 1 - t)
            or (self.y2 < self.frame_height and box[3] >= 1 - t)
        )


def plan_crop(
    region: Box | None,
    frame_width: int,
    frame_height: int,
    aspect: float,
    settings: CropSettings,
) -> Crop | None:
    """The crop for a motion region (relative box), or None for the whole frame.

    The region is padded, grown to at least the minimum size and to the model's aspect ratio
    (width / height) around its centre, and shifted (not cut) to stay inside the frame.
    """
    if region is None:
        return None
    x1, y1, x2, y2 = (region[0] * frame_width, region[1] * frame_height,
                      region[2] * frame_width, region[3] * frame_height)  # fmt: skip
    w, h = x2 - x1, y2 - y1
    w, h = w * (1 + 2 * settings.pad), h * (1 + 2 * settings.pad)
    shortest = settings.min_side * min(frame_width, frame_height)
    w, h = max(w, shortest), max(h, shortest)
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    w, h = min(w, frame_width), min(h, frame_height)
    if w * h > settings.max_area * frame_width * frame_height:
        return None
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = int(round(min(max(cx - w / 2, 0.0), frame_width - w)))
    top = int(round(min(max(cy - h / 2, 0.0), frame_height - h)))
    right, bottom = min(frame_width, left + int(round(w))), min(frame_height, top + int(round(h)))
    return Crop(left, top, right, bottom, frame_width, frame_height)


def input_aspect(detector: Detector, frame: Image) -> float:
    """Width / height of the detector's input (the frame's own if the model does not say)."""
    base = getattr(detector, "base", detector)  # a two-stage detector: its first stage
    width, height = getattr(base, "width", None), getattr(base, "height", None)
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return width / height
    return float(frame.shape[1] / frame.shape[0])


def detect_in_crop(detector: Detector, frame: Image, crop: Crop) -> list[tuple[Detection, bool]]:
    """What the detector finds in the crop, in frame coordinates, each with whether an inner
    edge of the crop cut it (see `merge`)."""
    found = detector.detect(frame[crop.y1 : crop.y2, crop.x1 : crop.x2])
    return [(replace(d, box=crop.to_frame(d.box)), crop.cut_edges(d.box)) for d in found]


def merge(
    previous: list[Detection], found: list[tuple[Detection, bool]], crop: Crop
) -> list[Detection]:
    """The detections of a crop with those seen before outside it (the scene did not move
    there). A carried detection is one whose centre lies outside the crop; a detection of
    the crop cut by an inner edge is dropped when it overlaps a carried one of its label
    (the same object, seen whole before)."""
    cx1, cy1, cx2, cy2 = crop.box
    carried = [
        d
        for d in previous
        if not (cx1 <= (d.box[0] + d.box[2]) / 2 <= cx2 and cy1 <= (d.box[1] + d.box[3]) / 2 <= cy2)
    ]
    kept = [
        d
        for d, cut in found
        if not (cut and any(c.label == d.label and _overlap(c.box, d.box) > 0.5 for c in carried))
    ]
    return sorted(kept + carried, key=lambda d: d.score, reverse=True)


def _overlap(a: Box, b: Box) -> float:
    """The share of the smaller box that lies in the other one."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller if smaller > 0 else 0.0
