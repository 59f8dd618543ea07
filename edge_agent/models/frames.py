"""Recent recorded frames of a camera, for a new model's smoke test."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from edge_agent.recording.index import SegmentIndex

log = logging.getLogger(__name__)
SEGMENTS_TRIED = 3
LOOKBACK_S = 3600.0  # a frame older than this is not 'recent'


def recent_frames(
    index: SegmentIndex, storage: Path, camera: str, count: int = SEGMENTS_TRIED
) -> list[tuple[NDArray[np.uint8], str]]:
    """The first frame of each of the camera's newest segments (up to `count`, newest
    first), each with the name of the file it came from."""
    found: list[tuple[NDArray[np.uint8], str]] = []
    recent = index.segments(camera, start=time.time() - LOOKBACK_S)
    for segment in reversed(recent[-(count + SEGMENTS_TRIED) :]):
        if len(found) >= count:
            break
        path = Path(segment.path)
        path = path if path.is_absolute() else storage / path
        try:
            with av.open(str(path)) as container:
                for frame in container.decode(video=0):
                    image = frame.to_ndarray(format="bgr24")
                    found.append((np.ascontiguousarray(image, dtype=np.uint8), path.name))
                    break
        except (av.error.FFmpegError, OSError) as e:
            log.info("%s: no frame from %s for the smoke test: %s", camera, path, e)
    return found
