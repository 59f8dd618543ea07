"""Replay from recorded segments: keyframe at or before the start, wall-clock media time."""

from __future__ import annotations

import asyncio

import pytest

from edge_agent.uplink.fmp4 import Chunk
from edge_agent.uplink.replay import Pacer, ReplayProducer, TimedPacket, from_keyframe
from fsv_contract.video import FrameKind, Hello
from testbed.footage import Footage
from tests.edge_agent.uplink.conftest import T0, Recording, decoded_counters, record_clip


def _timed(walls_keys: list[tuple[float, bool]]) -> list[tuple[None, TimedPacket]]:
    return [(None, TimedPacket(b"", w, 0.0, k)) for w, k in walls_keys]


def test_from_keyframe_starts_at_the_last_keyframe_at_or_before() -> None:
    packets = _timed([(0, True), (1, False), (2, True), (3, False), (4, False), (5, True)])
    started = [p.wall for _, p in from_keyframe(iter(packets), 3.5)]  # type: ignore[arg-type]
    assert started == [2, 3, 4, 5]
    late = [p.wall for _, p in from_keyframe(iter(packets), -1)]  # type: ignore[arg-type]
    assert late == [0, 1, 2, 3, 4, 5]


def test_pacer_sends_the_lead_in_at_once_and_skips_holes() -> None:
    pacer = Pacer(speed=2.0, start=100.0, lead_s=0.0)
    assert pacer.due(98.0, 2.0, started_at=10.0) == 10.0  # before the start: now
    assert pacer.due(100.0, 4.0, started_at=10.0) == 10.0
    assert pacer.due(104.0, 0.04, started_at=10.0) == 12.0  # 4 s of video at 2x
    assert abs(pacer.due(164.0, 0.04, started_at=10.0) - 12.02) < 1e-9  # the hole is skipped


async def _drain(producer: ReplayProducer) -> list[Hello | Chunk | str]:
    producer.begin()
    items: list[Hello | Chunk | str] = []
    while not items or not isinstance(items[-1], str):
        items.append(await asyncio.wait_for(producer.queue.get(), 10))
    return items


@pytest.mark.asyncio
async def test_replay_starts_at_the_keyframe_before_the_start_and_shows_the_right_frames(
    recording: Recording,
) -> None:
    start = T0 + 3.3  # inside the second segment, whose keyframe is at T0 + 2.0
    producer = ReplayProducer(
        recording.index, recording.storage, "cam1", start, asyncio.get_running_loop()
    )
    items = await _drain(producer)
    hello = items[0]
    assert isinstance(hello, Hello) and hello.mode == "replay"
    assert abs((hello.origin_wall or 0) - (T0 + 2.0)) < 0.01
    assert items[-1] == "done: end of the recording"
    chunks = [i for i in items if isinstance(i, Chunk)]
    assert chunks[0].header.kind is FrameKind.INIT and chunks[1].header.keyframe
    frames = decoded_counters(b"".join(c.payload for c in chunks[: 1 + 40]))
    # Media time 0 is the keyframe at T0 + 2 s: frame 50 of the 25 fps clip. At 3.3 s the
    # picture on screen is the frame presented at 3.28 s: number 82.
    assert frames[0][1] == 50
    assert max((t, c) for t, c in frames if t <= 1.3 + 1e-6)[1] == 82
    # The 10 s outage stays a hole in the media timeline (media time = UTC - origin).
    walls = [c.header.wall_ms / 1000 for c in chunks if c.header.kind is FrameKind.FRAGMENT]
    jumps = [b - a for a, b in zip(walls, walls[1:], strict=False) if b - a > 1]
    assert len(jumps) == 1 and abs(jumps[0] - 10.04) < 0.1


@pytest.mark.asyncio
async def test_replay_in_an_outage_starts_at_the_next_recording(recording: Recording) -> None:
    start = recording.segments[2].end + 5.0
    producer = ReplayProducer(
        recording.index, recording.storage, "cam1", start, asyncio.get_running_loop()
    )
    items = await _drain(producer)
    hello = items[0]
    assert isinstance(hello, Hello)
    assert hello.origin_wall == recording.segments[3].start


@pytest.mark.asyncio
async def test_replay_after_the_last_recording_says_so(recording: Recording) -> None:
    producer = ReplayProducer(
        recording.index, recording.storage, "cam1", T0 + 999, asyncio.get_running_loop()
    )
    assert await _drain(producer) == ["no recording at or after that time"]


@pytest.mark.asyncio
async def test_a_sub_stream_replay_reads_the_sub_lane_and_says_when_there_is_none(
    recording: Recording, footage: Footage
) -> None:
    loop = asyncio.get_running_loop()
    producer = ReplayProducer(recording.index, recording.storage, "cam1", T0, loop, stream="sub")
    # The camera's main stream is recorded, its sub stream never was.
    assert await _drain(producer) == ["no sub-stream recording at or after that time"]
    lane = record_clip(recording.storage, recording.index, "cam1--sub", footage.sub_h264, T0)
    producer = ReplayProducer(recording.index, recording.storage, "cam1", T0, loop, stream="sub")
    items = await _drain(producer)
    hellos = [i for i in items if isinstance(i, Hello)]
    assert hellos and {(h.camera, h.stream) for h in hellos} == {("cam1", "sub")}
    assert hellos[0].origin_wall == lane[0].start and (hellos[0].width, hellos[0].height) == (
        640, 360,
    )  # fmt: skip
    assert items[-1] == "done: end of the recording"
    fragments = [i for i in items if isinstance(i, Chunk) and i.header.kind is FrameKind.FRAGMENT]
    walls = [f.header.wall_ms / 1000 for f in fragments]
    assert walls[0] >= lane[0].start - 0.01 and walls[-1] <= lane[-1].end + 0.01
