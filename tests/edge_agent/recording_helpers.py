"""Helpers of the recording tests: configs, segment files cut from real footage, ffprobe."""

import errno
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av

from edge_agent.config import EdgeConfig
from edge_agent.recording.segment_writer import ClosedSegment, SegmentFile, SpaceGuard
from testbed.footage import Footage


def make_config(
    tmp_path: Path,
    cameras: dict[str, str],
    credentials: dict[str, str] | None = None,
    segment_seconds: int = 5,
    storage: dict[str, Any] | None = None,
    **recorder: Any,
) -> EdgeConfig:
    """A config recording `cameras` (id -> URL) into tmp_path/storage with quick retries.

    `storage` adds storage settings (watermarks, cleanup interval).
    """
    creds = credentials or {}
    return EdgeConfig.model_validate(
        {
            "site_id": "test",
            "storage": {
                "path": str(tmp_path / "storage"),
                "segment_seconds": segment_seconds,
                **(storage or {}),
            },
            "recorder": {"backoff_initial_s": 0.5, "backoff_max_s": 2.0, **recorder},
            "detection": {"enabled": False},
            "cameras": [
                {
                    "id": cam,
                    "name": f"camera {cam}",
                    "station": "quarantine",
                    "main_url": url,
                    **({"credential": creds[cam]} if cam in creds else {}),
                }
                for cam, url in cameras.items()
            ],
        }
    )


def copy_clip(
    clip: Path, storage: Path, camera: str, start: float, seconds: float, audio: bool = True
) -> ClosedSegment:
    """Write `seconds` of `clip` (from its first keyframe) into a closed segment file."""
    with av.open(str(clip)) as src:
        video = src.streams.video[0]
        sound = src.streams.audio[0] if audio and src.streams.audio else None
        segment = SegmentFile(storage, camera, start, video, sound)
        fill(segment, src, seconds)
    return segment.close(end=start + seconds)


def fill(segment: SegmentFile, src: av.container.InputContainer, seconds: float) -> None:
    """Copy packets from `src` into an open segment until `seconds` of video are in."""
    video = src.streams.video[0]
    tb = float(video.time_base or 0)
    first: int | None = None
    for packet in src.demux():
        if packet.dts is None or not packet.size:
            continue
        if packet.stream is video:
            if first is None and not packet.is_keyframe:
                continue
            first = packet.dts if first is None else first
            if (packet.dts - first) * tb >= seconds:
                return
            packet.stream = segment.video_out
        elif segment.audio_out is not None and first is not None:
            packet.stream = segment.audio_out
        else:
            continue
        segment.container.mux_one(packet)


def ffprobe(path: Path) -> list[dict[str, Any]]:
    """ffprobe's streams of `path` with packet counts; raises if ffprobe cannot read it."""
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-count_packets", "-show_entries",
            "stream=codec_type,codec_name,codec_tag_string,width,height,nb_read_packets,duration",
            "-of", "json", str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout  # fmt: skip
    streams: list[dict[str, Any]] = json.loads(out)["streams"]
    return streams


def decoded_frames(path: Path) -> int:
    """How many video frames of `path` decode; a damaged tail ends the count, not the test."""
    frames = 0
    with av.open(str(path)) as container:
        try:
            for _frame in container.decode(video=0):
                frames += 1
        except av.FFmpegError:
            pass  # a fragment cut short by a crash: what came before it counts
    return frames


def wait_for(predicate: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    """Poll `predicate` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


class ShrinkingDisk:
    """A disk whose free space is set by the test (the real files are still written)."""

    def __init__(self, free: int) -> None:
        self.free = free

    def __call__(self, path: Path) -> "shutil._ntuple_diskusage":
        return shutil._ntuple_diskusage(10**12, 10**12 - self.free, self.free)


def header_only_segment(
    footage: Footage, storage: Path, camera: str, start: float
) -> ClosedSegment:
    """A segment abandoned after the disk refused its first fragment: a header, no frame."""
    disk = ShrinkingDisk(free=10**9)
    guard = SpaceGuard(storage, reserved_bytes=64 << 20, disk_usage=disk)
    with av.open(str(footage.main_h264)) as src:
        segment = SegmentFile(storage, camera, start, src.streams.video[0], None, guard)
        disk.free = 32 << 20  # inside the reserve before the first fragment is written
        try:
            fill(segment, src, 2.0)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        else:
            raise AssertionError("the first fragment was not refused")
        return segment.abandon(end=start + 2.0)
