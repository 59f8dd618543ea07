"""Zones and masks: polygons in relative coordinates, point tests and pixel masks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field

if TYPE_CHECKING:  # OpenCV and NumPy load with the first mask, not with the config
    import numpy as np
    from numpy.typing import NDArray

Point = tuple[float, float]
Box = tuple[float, float, float, float]  # x1, y1, x2, y2, relative to the frame


def _check_polygon(points: list[Point]) -> list[Point]:
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"point ({x}, {y}) is outside the frame: use 0..1 coordinates")
    if abs(_area(points)) < 1e-6:
        raise ValueError("polygon has no area (points in a line or repeated)")
    return points


Polygon = Annotated[
    list[tuple[float, float]],
    Field(min_length=3, max_length=64, description="[[x, y], ...] relative to the frame"),
    AfterValidator(_check_polygon),
]


def _area(points: Sequence[Point]) -> float:
    """Signed area (shoelace formula)."""
    total = 0.0
    for (x1, y1), (x2, y2) in zip(points, [*points[1:], points[0]], strict=True):
        total += x1 * y2 - x2 * y1
    return total / 2.0


def contains(polygon: Sequence[Point], point: Point) -> bool:
    """True if `point` lies inside `polygon` (ray casting; edges count as inside)."""
    x, y = point
    inside = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if _on_segment(x, y, x1, y1, x2, y2):
            return True
        if (y1 > y) != (y2 > y):
            cross_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < cross_x:
                inside = not inside
    return inside


def _on_segment(x: float, y: float, x1: float, y1: float, x2: float, y2: float) -> bool:
    cross = (x - x1) * (y2 - y1) - (y - y1) * (x2 - x1)
    if abs(cross) > 1e-9:
        return False
    return (
        min(x1, x2) - 1e-9 <= x <= max(x1, x2) + 1e-9
        and min(y1, y2) - 1e-9 <= y <= max(y1, y2) + 1e-9
    )


def anchor_point(box: Box, anchor: str) -> Point:
    """The point of a box tested against zones: bottom centre (feet) or centre."""
    x1, y1, x2, y2 = box
    cx = (x1 + x2) / 2.0
    return (cx, y2) if anchor == "bottom" else (cx, (y1 + y2) / 2.0)


def in_zone(zone: Sequence[Point] | None, box: Box, anchor: str) -> bool:
    """True if the box's anchor lies in the zone (no zone: the whole frame)."""
    return zone is None or contains(zone, anchor_point(box, anchor))


def in_any(polygons: Sequence[Sequence[Point]], point: Point) -> bool:
    """True if the point lies in any of the polygons."""
    return any(contains(p, point) for p in polygons)


def mask_image(
    polygons: Sequence[Sequence[Point]], width: int, height: int
) -> NDArray[np.uint8] | None:
    """A 0/255 image that is 0 inside the masked polygons, or None when nothing is masked."""
    if not polygons:
        return None
    import cv2
    import numpy as np

    keep = np.full((height, width), 255, dtype=np.uint8)
    for polygon in polygons:
        pts = np.array([[round(x * (width - 1)), round(y * (height - 1))] for x, y in polygon])
        cv2.fillPoly(keep, [pts.astype(np.int32)], 0)
    return keep
