"""The RTSP test server: codecs, a shared live stream, seamless loops, restart on the same port."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from testbed.errors import RtspServerError
from testbed.footage import SHORT_SECONDS, Footage
from testbed.frames import SeenFrame, probe_streams, read_frames
from testbed.ports import port_accepts
from testbed.rtsp import RtspServer

RtspServerFactory = Callable[..., RtspServer]

pytestmark = pytest.mark.slow

SHORT_FRAMES = SHORT_SECONDS * 25
EXPECTED = {
    "cam1": [("h264", 1920, 1080)],
    "cam1_sub": [("h264", 640, 360)],
    "cam2": [("h264", 1920, 1080)],
    "cam2_sub": [("h264", 640, 360)],
    "h265": [("hevc", 1920, 1080)],
    "aac": [("h264", 1920, 1080), ("aac", 48000, 1)],
    "pcma": [("h264", 1920, 1080), ("pcm_alaw", 8000, 1)],
    "pcmu": [("h264", 1920, 1080), ("pcm_mulaw", 8000, 1)],
    "ac3": [("h264", 1920, 1080), ("ac3", 48000, 1)],
    "mp3": [("h264", 1920, 1080), ("mp3", 44100, 1)],
    "opus": [("h264", 1920, 1080), ("opus", 48000, 2)],  # RTP Opus is always opus/48000/2
    "short": [("h264", 640, 360)],
}


def describe(stream: dict[str, Any]) -> tuple[str, int, int]:
    """(codec, width, height) for video, (codec, sample rate, channels) for audio."""
    if stream["codec_type"] == "video":
        return stream["codec_name"], stream["width"], stream["height"]
    return stream["codec_name"], int(stream["sample_rate"]), stream["channels"]


def test_every_path_serves_its_codec_and_size(rtsp_server: RtspServer) -> None:
    with ThreadPoolExecutor(len(EXPECTED)) as pool:
        streams = pool.map(probe_streams, map(rtsp_server.url, EXPECTED))
        found = dict(zip(EXPECTED, streams, strict=True))
    assert {name: [describe(s) for s in streams] for name, streams in found.items()} == EXPECTED


def assert_steady(frames: list[SeenFrame]) -> None:
    """pts rise by one frame (40 ms) each time, with no rewind and no gap.

    The first frame is skipped: ffmpeg's RTSP demuxer reports it at the same pts as the
    second one, although their RTP timestamps on the wire differ by 3600 as they should.
    """
    steps = [round(b.pts - a.pts, 3) for a, b in pairwise(frames[1:])]
    assert steps and set(steps) == {0.04}, f"uneven pts steps: {sorted(set(steps))}"


def test_loop_keeps_timestamps_rising(rtsp_server: RtspServer) -> None:
    frames = read_frames(rtsp_server.url("short"), seconds=SHORT_SECONDS + 2.5)
    counters = [frame.counter for frame in frames]
    wraps = [i for i, (a, b) in enumerate(pairwise(counters)) if b < a]
    assert wraps, f"no loop boundary seen in {len(frames)} frames"
    assert all(counters[i] == SHORT_FRAMES - 1 and counters[i + 1] == 0 for i in wraps)
    assert all((b - a) % SHORT_FRAMES == 1 for a, b in pairwise(counters))
    assert_steady(frames)


def test_second_client_joins_live_without_rewinding_the_first(rtsp_server: RtspServer) -> None:
    url = rtsp_server.url("cam2_sub")
    first: list[SeenFrame] = []
    watcher = threading.Thread(target=lambda: first.extend(read_frames(url, seconds=7)))
    watcher.start()
    time.sleep(3.5)
    second = read_frames(url, seconds=2)
    watcher.join()
    ours = [frame.counter for frame in first]
    assert all(b - a == 1 for a, b in pairwise(ours)), "first client saw a jump or rewind"
    assert_steady(first)
    theirs = [frame.counter for frame in second]
    assert theirs[0] >= ours[0] + 50, "second client started near the beginning: it rewound"
    assert set(theirs) <= set(ours), "the two clients did not see the same live stream"


def test_server_restarts_on_the_same_port(
    rtsp_server_factory: RtspServerFactory, footage: Footage
) -> None:
    server = rtsp_server_factory({"short": footage.short_h264})
    port = server.port
    assert describe(probe_streams(server.url("short"))[0]) == ("h264", 640, 360)
    server.stop()
    assert not port_accepts(port)
    server.start()
    assert server.port == port
    assert len(read_frames(server.url("short"), seconds=1)) >= 20


def test_unreadable_file_fails_with_the_server_log(rtsp_server_factory: RtspServerFactory) -> None:
    with pytest.raises(RtspServerError, match="ffprobe cannot read"):
        rtsp_server_factory({"bad": Path(__file__)})
