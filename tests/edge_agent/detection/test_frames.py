"""The frame source: sampling rate and size, stream-clock mapping, failing streams retried."""

from __future__ import annotations

import time

import av

from edge_agent.detection.frames import DropOldestQueue, FrameSource, StreamClock, sample_frames
from edge_agent.restart_limiter import RestartLimiter
from testbed.ports import free_port
from tests.edge_agent.detection.conftest import RecordedClip


def test_sampling_keeps_the_rate_and_downscales(segment_files: RecordedClip) -> None:
    with av.open(str(segment_files.files[0])) as container:
        frames = list(sample_frames(container, 2.0, 320, lambda s: 1000.0 + s))
    assert len(frames) == 4  # 2 s of 25 fps video at 2 fps
    assert frames[0].image.shape == (180, 320, 3)
    assert [round(f.ts - 1000.0, 2) for f in frames] == [0.0, 0.52, 1.04, 1.56]


def test_stream_clock_takes_the_least_lag_and_follows_a_jump() -> None:
    clock = StreamClock(jump_s=5.0)
    assert clock.wall(0.0, 100.9) == 100.9  # buffered at connect: it arrived late
    assert clock.wall(1.0, 101.0) == 101.0  # less lag: the better estimate wins
    assert clock.wall(2.0, 102.3) == 102.0  # network jitter does not move the timeline
    assert clock.wall(3.0, 110.0) == 110.0  # the stream clock jumped back: re-anchor


def test_unreachable_stream_is_retried_without_dying() -> None:
    port = free_port()  # nothing listens there
    source = FrameSource(
        "frames-test",
        [f"rtsp://127.0.0.1:{port}/sub", f"rtsp://127.0.0.1:{port}/main"],
        DropOldestQueue(2),
        2.0,
        320,
        RestartLimiter(0.05, 0.1, 100, 60),
        {"rtsp_transport": "tcp"},
        (2.0, 2.0),
    )
    source.start()
    deadline = time.monotonic() + 15
    while source.reconnects < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    source.stop()
    assert source.reconnects >= 2 and source.last_error is not None
    assert source.frames == 0 and source.connected_url is None
