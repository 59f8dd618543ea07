"""A recent recorded frame of a camera, for a new model's smoke test."""

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


def recent_frame(
    index: SegmentIndex, storage: Path, camera: str
) -> tuple[NDArray[np.uint8] | None, str]:
    """The first frame of one of the camera's newest segments, and where it came from."""
    recent = index.segments(camera, start=time.time() - LOOKBACK_S)
    for segment in reversed(recent[-SEGMENTS_TRIED:]):
        path = Path(segment.path)
        path = path if path.is_absolute() else storage / path
        try:
            with av.open(str(path)) as container:
                for frame in container.decode(video=0):
                    image = frame.to_ndarray(format="bgr24")
                    return np.ascontiguousarray(image, dtype=np.uint8), path.name
        except (av.error.FFmpegError, OSError, StopIteration) as e:
            log.info("%s: no frame from %s for the smoke test: %s", camera, path, e)
    return None, "blank (nothing recorded yet)"
