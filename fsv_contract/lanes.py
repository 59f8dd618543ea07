"""Recording lanes: a camera's main stream and, where it is recorded too, its sub stream.

Each lane has its own segments, index rows, SHA-256 chain and anchors. The main lane keeps
the camera's id; the sub lane is the camera id plus SUB_SUFFIX (`cam1--sub`), which is a
valid camera level (so anchors, audits and archive paths take it unchanged) that the edge
config forbids as a camera's own id.
"""

from __future__ import annotations

from typing import Literal

Lane = Literal["main", "sub"]
SUB_SUFFIX = "--sub"
MAX_LANE_ID = 63  # LEVEL_PATTERN's length


def lane_id(camera: str, stream: Lane) -> str:
    """The id a lane's segments and chain are kept under."""
    return camera if stream == "main" else camera + SUB_SUFFIX


def split_lane(lane: str) -> tuple[str, Lane]:
    """The camera and stream of a lane id (`cam1--sub` -> (`cam1`, `sub`))."""
    if lane.endswith(SUB_SUFFIX) and len(lane) > len(SUB_SUFFIX):
        return lane[: -len(SUB_SUFFIX)], "sub"
    return lane, "main"
