"""The frame source: sampling, stream-clock mapping, the GOP queue and decoding a shared feed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction

import av

from edge_agent.detection.frames import (
    DropOldestQueue,
    Frame,
    FrameSampler,
    GopTail,
    KeyframeGate,
    PacketDecoder,
    PacketFrameSource,
    StreamClock,
    sample_frames,
)
from edge_agent.detection.packets import GopQueue, QueuedPacket
from edge_agent.recording.events import PacketEvent
from edge_agent.uplink.tap import LiveTap
from testbed.footage import Footage, read_frame_counter
from tests.edge_agent.detection.conftest import RecordedClip
from tests.edge_agent.uplink.conftest import annexb_events


def test_sampling_keeps_the_rate_and_downscales(segment_files: RecordedClip) -> None:
    with av.open(str(segment_files.files[0])) as container:
        frames = list(sample_frames(container, 2.0, 320, lambda s: 1000.0 + s))
    assert len(frames) == 4  # 2 s of 25 fps video at 2 fps
    assert frames[0].image.shape == (180, 320, 3)
    assert [round(f.ts - 1000.0, 2) for f in frames] == [0.0, 0.52, 1.04, 1.56]


def test_sampler_rearms_after_the_stream_clock_jumps_back() -> None:
    sampler = FrameSampler(2.0)
    assert [sampler.take(s) for s in (0.0, 0.2, 0.5, 0.9)] == [True, False, True, False]
    assert sampler.take(-100.0)  # a reconnected stream starts its clock over


def test_stream_clock_takes_the_least_lag_and_follows_a_jump() -> None:
    clock = StreamClock(jump_s=5.0)
    assert clock.wall(0.0, 100.9) == 100.9  # buffered at connect: it arrived late
    assert clock.wall(1.0, 101.0) == 101.0  # less lag: the better estimate wins
    assert clock.wall(2.0, 102.3) == 102.0  # network jitter does not move the timeline
    assert clock.wall(3.0, 110.0) == 110.0  # the stream clock jumped back: re-anchor


def _packet(n: int, key: bool) -> QueuedPacket:
    event = PacketEvent("cam1", "video", "h264", bytes(10), n, n, Fraction(1, 25), n, key, None)
    return QueuedPacket(event, float(n))


def _drain(queue: GopQueue) -> list[int]:
    out = []
    while (item := queue.get(0)) is not None:
        out.append(item.event.dts)
    return out


@contextmanager
def _running(
    tap: LiveTap, fps: float, width: int
) -> Iterator[tuple[PacketFrameSource, DropOldestQueue]]:
    """A frame source on `tap` decoding at `fps` to `width`, stopped on leaving."""
    frames = DropOldestQueue(100)
    source = PacketFrameSource("frames-test", tap, frames, fps, width)
    source.start()
    try:
        yield source, frames
    finally:
        source.stop()


def _wait_until(done: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def _taken(frames: DropOldestQueue) -> list[Frame]:
    return [f for _ in range(len(frames)) if (f := frames.get(0)) is not None]


def test_gop_queue_starts_at_a_keyframe_and_drops_whole_gops() -> None:
    queue = GopQueue(max_packets=5)
    for n, key in enumerate([False, True, False, False, True, False, True]):
        queue.put(_packet(n, key))
    assert queue.skipped == 1  # nothing to decode from before the first keyframe
    # Full at packet 6: the oldest GOP (1, 2, 3) went whole, the decoder restarts at 4.
    assert (queue.dropped, queue.gops_dropped) == (3, 1)
    assert _drain(queue) == [4, 5, 6]


def test_gop_queue_refuses_the_rest_of_a_gop_it_cut() -> None:
    queue = GopQueue(max_packets=3)
    for n, key in enumerate([True, False, False, False, False, True, False]):
        queue.put(_packet(n, key))
    # Packet 3 found the queue full of one GOP: 0-2 dropped, 3 and 4 cannot be decoded.
    assert (queue.dropped, queue.gops_dropped) == (5, 1)
    assert _drain(queue) == [5, 6]


def test_the_decoder_waits_for_a_keyframe_after_a_reconnect(footage: Footage) -> None:
    events = annexb_events(footage.sub_h264)[:60]  # keyframes at 0 and 50
    decoder = PacketDecoder()
    assert sum(len(decoder.decode(e)) for e in events[:30]) == 30
    # The reader reconnected: the stream starts over mid-GOP, dts back to 10.
    assert sum(len(decoder.decode(e)) for e in events[10:50]) == 0
    assert len(decoder.decode(events[50])) == 1 and events[50].keyframe


def test_a_shared_feed_is_decoded_at_the_sampling_rate_with_wall_times(
    footage: Footage,
) -> None:
    wall0 = time.time() - 2.4  # packets 0-59 came in the last 2.4 s, the rest come now
    events = annexb_events(footage.sub_h264, wall0=wall0)[:100]  # 25 fps, 2 s GOPs
    tap = LiveTap("cam1", "sub")
    for event in events[:60]:
        tap.publish(event)  # before detection subscribes: the cached GOP starts at 50
    with _running(tap, 2.0, 320) as (source, frames):
        for event in events[60:]:  # at the camera's pace, as a reader hands them on
            time.sleep(max(0.0, event.wall - time.time()))
            tap.publish(event)
        _wait_until(lambda: source.frames >= 4, 10)
    assert tap.subscribers == 0  # stopping unsubscribes
    got = _taken(frames)
    assert len(got) == 4 and source.decode_errors == 0  # 2 s (packets 50-99) at 2 fps
    assert got[0].image.shape == (180, 320, 3)
    assert source.packets.skipped == 0 and source.packets.dropped == 0
    # Cached packets map to their stamped times, live ones to their arrival; the least
    # lag wins, so frame times keep the stream's own spacing on the wall clock.
    times = [f.ts for f in got]
    assert times[0] == events[50].wall
    assert [round(b - a, 2) for a, b in zip(times, times[1:], strict=False)] == [0.52] * 3


def test_keyframes_alone_are_decoded_when_they_come_often_enough() -> None:
    def mode(fps: float, spacing: float) -> bool:
        gate = KeyframeGate(fps)
        for i in range(6):
            assert gate.wants(i * spacing, True)
        return gate.keyframes_only

    assert mode(1.0, 1.0) and mode(1.0, 0.5) and mode(0.5, 2.0)  # every (2nd) keyframe is due
    assert not mode(1.0, 2.0)  # 2 s GOPs give 0.5 fps: decode them
    assert not mode(1.0, 0.96)  # every 2nd keyframe is due: 0.52 fps
    gate = KeyframeGate(1.0)
    for i in range(5):
        gate.wants(float(i), True)
    assert not gate.wants(4.04, False)  # a P-frame is left out
    assert gate.wants(6.0, True) and gate.wants(6.04, False)  # the GOP grew: decode it all


def test_a_feed_with_keyframes_at_the_analysis_rate_decodes_only_them(
    footage: Footage,
) -> None:
    events = annexb_events(footage.sub_h264, wall0=time.time() - 12)[:300]  # 2 s GOPs
    tap = LiveTap("cam1", "sub")
    with _running(tap, 0.5, 640) as (source, frames):
        for event in events:
            tap.publish(event)
        _wait_until(lambda: source.frames >= 6, 20)
    assert source.keyframes.keyframes_only and source.decode_errors == 0
    # 12 s at 0.5 fps: from the 5th keyframe on (4 spacings seen), keyframes alone; the
    # 49 P-frames of each of the last two GOPs were never decoded.
    assert source.frames == 6 and source.not_decoded == 2 * 49
    assert [read_frame_counter(f.image) for f in _taken(frames)] == [0, 50, 100, 150, 200, 250]


def test_the_end_of_a_gop_after_its_last_due_frame_is_not_decoded() -> None:
    tail, sampler = GopTail(), FrameSampler(1.0)
    decoded = []
    for i in range(150):  # 25 fps, a keyframe every 2 s, analysed at 1 fps
        t = i / 25
        if tail.wants(t, i % 50 == 0, False, sampler.due):
            decoded.append(i)
            sampler.take(t)
    # The first GOP in full (its length is not known yet), then each up to its 1 s frame.
    assert decoded == list(range(76)) + list(range(100, 126))
    late = GopTail()
    for t in (0.0, 2.0):
        late.wants(t, True, False, None)
    assert not late.wants(2.04, False, False, 4.0)  # next due after the next keyframe
    assert not late.wants(4.0, False, False, 4.0)  # the GOP is longer: still cut
    assert late.wants(4.04, True, False, 4.0) and late.wants(4.08, False, False, 5.0)
    bframes = GopTail()
    for t in (0.0, 2.0):
        bframes.wants(t, True, True, None)
    assert bframes.wants(2.04, False, False, 4.0)  # reordered frames: decoded in full


def test_a_feed_analysed_at_1_fps_decodes_each_gop_up_to_its_due_frame(
    footage: Footage,
) -> None:
    events = annexb_events(footage.sub_h264, wall0=time.time() - 12)[:300]  # 2 s GOPs
    tap = LiveTap("cam1", "sub")
    with _running(tap, 1.0, 640) as (source, frames):
        for event in events:
            tap.publish(event)
        _wait_until(lambda: source.frames >= 12 and not len(source.packets), 20)
        time.sleep(0.2)  # the packet the decoding thread took last
    assert source.decode_errors == 0 and not source.keyframes.keyframes_only
    got = _taken(frames)
    # Every due frame was seen, decoded from its GOP's keyframe (the pictures are right);
    # from the second GOP on, its last 24 packets were left out.
    assert [read_frame_counter(f.image) for f in got] == list(range(0, 300, 25))
    assert source.tail_skipped == 5 * 24
