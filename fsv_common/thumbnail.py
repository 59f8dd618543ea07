"""A small JPEG of a recording at a moment, decoded from one keyframe only.

Scrubbing previews need a picture near the time, not the exact frame: the keyframe at or
before the moment is decoded alone (no run of P-frames after it), scaled down and encoded.
That costs one keyframe's decode on whichever machine holds the segment, and a few KB to
send. Both programs use it: central on the city archive's files, the edge on its own.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

WIDTH = 192  # px; 16:9 footage gives 192x108, about 4-8 KB as JPEG
JPEG_QUALITY = 70
MAX_JPEG_BYTES = 256 * 1024  # what either side accepts as a thumbnail


class ThumbnailError(Exception):
    """No picture could be made (no keyframe there, an unreadable file)."""


def keyframe_jpeg(path: Path, offset_s: float, width: int = WIDTH) -> bytes:
    """JPEG of the keyframe at or before `offset_s` seconds into the recording at `path`.

    The first keyframe when none comes before; ThumbnailError when there is none at all.
    Only packets are read up to the moment; the one chosen keyframe is decoded.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ThumbnailError(f"{path.name} has no video track")
            stream = container.streams.video[0]
            tb = float(stream.time_base or Fraction(1, 90000))
            first: int | None = None
            chosen: Any = None  # av.Packet
            for packet in container.demux(stream):
                if packet.dts is None or not packet.size:
                    continue
                first = packet.dts if first is None else first
                at = (packet.dts - first) * tb
                if packet.is_keyframe and (chosen is None or at <= offset_s):
                    chosen = packet
                if at > offset_s and chosen is not None:
                    break
            if chosen is None:
                raise ThumbnailError(f"{path.name} has no keyframe")
            frames = list(stream.codec_context.decode(chosen)) + list(
                stream.codec_context.decode(None)
            )
    except av.FFmpegError as e:
        raise ThumbnailError(f"cannot read {path.name}: {e}") from e
    if not frames:
        raise ThumbnailError(f"the keyframe of {path.name} did not decode")
    return _jpeg(frames[0], width)


def _jpeg(frame: av.VideoFrame, width: int) -> bytes:
    height = max(2, round(frame.height * width / max(frame.width, 1) / 2) * 2)
    image: np.ndarray = frame.reformat(width=width, height=height, format="bgr24").to_ndarray()
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ThumbnailError("the JPEG encoder refused the picture")
    return bytes(data.tobytes())


def is_jpeg(data: bytes) -> bool:
    """Whether bytes look like one JPEG image (start and end markers) of an accepted size."""
    return (
        4 <= len(data) <= MAX_JPEG_BYTES
        and data[:3] == b"\xff\xd8\xff"
        and data[-2:] == b"\xff\xd9"
    )
