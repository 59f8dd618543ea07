"""A camera's streams: connecting, choosing the tracks to record, naming write failures."""

from __future__ import annotations

import errno
import logging
from typing import Any

import av
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.container.streams import StreamContainer
from av.video.stream import VideoStream

from edge_agent.config import RecorderConfig
from edge_agent.errors import UnsupportedStreamError
from edge_agent.recording.segment_writer import VIDEO_TAGS, audio_codec_name, mp4_accepts

log = logging.getLogger(__name__)


# PyAV's demuxer finds each packet's stream with `container.streams[i]`, which goes through
# `StreamContainer.get`: two generators and a list per packet, a few microseconds each time
# and more with the caches cold, on every packet of every camera (a plain `ffmpeg -c copy`
# does none of it). A plain index is answered directly; every other key still goes through
# PyAV's own `__getitem__`.
_PYAV_GETITEM = StreamContainer.__getitem__


def _stream_at(self: StreamContainer, key: Any) -> Any:
    """`StreamContainer[key]`, with a plain index answered without PyAV's generators."""
    if type(key) is int:
        return tuple(self)[key]
    return _PYAV_GETITEM(self, key)


def fast_stream_lookup() -> None:
    """Answer `container.streams[i]` directly, as the demuxer asks it for every packet."""
    if StreamContainer.__getitem__ is not _stream_at:
        StreamContainer.__getitem__ = _stream_at  # type: ignore[method-assign]


def open_camera(url: str, config: RecorderConfig) -> InputContainer:
    """Connect to an RTSP stream (never log `url`: it may carry a login)."""
    fast_stream_lookup()
    options = {
        "rtsp_transport": config.rtsp_transport,
        # Socket I/O timeout inside FFmpeg, in microseconds: a stalled camera ends the read
        # with ETIMEDOUT without a Python interrupt callback on every socket read.
        "timeout": str(int(config.read_timeout_s * 1_000_000)),
    }
    return av.open(url, options=options, timeout=(config.open_timeout_s, None))


def select_streams(
    container: InputContainer, camera: str, dropped_audio: set[str]
) -> tuple[VideoStream, AudioStream | None]:
    """The video track to record and the audio track to keep, if the MP4 muxer can hold it.

    Raises UnsupportedStreamError when there is no video or its codec cannot be stored.
    `dropped_audio` holds the audio codecs already dropped (each is logged once); a codec
    the muxer refused at run time is added to it by the session and stays dropped.
    """
    if not container.streams.video:
        raise UnsupportedStreamError("no video track")
    video = container.streams.video[0]
    codec = video.codec_context.name
    if codec not in VIDEO_TAGS:
        raise UnsupportedStreamError(f"unsupported codec: {codec}")
    if not video.codec_context.width or not video.codec_context.height:
        raise UnsupportedStreamError(f"{codec} video without a picture size (no parameter sets)")
    audio = container.streams.audio[0] if container.streams.audio else None
    if audio is None:
        return video, None
    name = audio_codec_name(audio)
    if name in dropped_audio:
        return video, None
    if not mp4_accepts(name):
        dropped_audio.add(name)
        log.warning("%s: audio %s cannot be stored in MP4; recording video only", camera, name)
        return video, None
    return video, audio


def write_failure(error: av.FFmpegError | OSError, what: str) -> str:
    """A reason naming what could not be written and why ("video h264: disk full")."""
    if error.errno == errno.ENOSPC:
        return f"{what}: disk full (no space left on device)"
    return f"{what}: cannot write a segment: {error.strerror or type(error).__name__}".lower()
