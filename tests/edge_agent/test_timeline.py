"""The recorder's pure timing decisions: dts repair, stream-to-UTC clock, segment placement."""

from edge_agent.recording.timeline import (
    DtsGuard,
    Stamp,
    Verdict,
    WallClock,
    cut_tick,
    segment_times,
)


def guard() -> DtsGuard:
    return DtsGuard(jump_ticks=5 * 90_000, default_duration=3600)


def test_rising_dts_is_written_unchanged() -> None:
    g = guard()
    assert g.check(1000, 1000, 3600) == (Verdict.WRITE, Stamp(1000, 1000))
    assert g.check(4600, 8200, 3600) == (Verdict.WRITE, Stamp(4600, 8200))
    assert g.repaired == 0


def test_missing_dts_uses_pts_then_follows_the_last_packet() -> None:
    g = guard()
    assert g.check(None, 500, None) == (Verdict.WRITE, Stamp(500, 500))
    assert g.check(None, None, 3000) == (Verdict.WRITE, Stamp(3500, 3500))
    assert g.check(None, None, None) == (Verdict.WRITE, Stamp(7100, 7100))
    assert g.repaired == 2


def test_first_packet_without_any_timestamp_is_dropped() -> None:
    assert guard().check(None, None, 3600)[0] is Verdict.DROP


def test_repeated_or_slightly_backwards_dts_is_bumped_past_the_last() -> None:
    g = guard()
    g.check(90_000, 90_000, 3600)
    assert g.check(90_000, 90_000, 3600) == (Verdict.WRITE, Stamp(90_001, 90_001))
    assert g.check(80_000, 70_000, 3600) == (Verdict.WRITE, Stamp(90_002, 90_002))
    assert g.repaired == 2


def test_pts_before_dts_is_raised_to_dts() -> None:
    assert guard().check(1000, 400, None) == (Verdict.WRITE, Stamp(1000, 1000))


def test_large_jumps_either_way_are_reported_and_restart_the_guard() -> None:
    g = guard()
    g.check(100 * 90_000, 100 * 90_000, 3600)
    verdict, stamp = g.check(3600, 3600, 3600)  # camera rebooted: its clock restarts
    assert verdict is Verdict.JUMP
    assert g.last == 100 * 90_000  # nothing accepted until the caller restarts
    g.restart(stamp)
    assert g.check(7200, 7200, 3600) == (Verdict.WRITE, Stamp(7200, 7200))
    assert g.check(7200 + 6 * 90_000, None, None)[0] is Verdict.JUMP


def test_clock_takes_the_least_lag_so_a_connect_burst_does_not_shift_time() -> None:
    # Stream time 0 was captured at 998.0; at connect (1000.5) the server bursts out the
    # buffered GOP, then live packets arrive 50 ms after capture.
    clock = WallClock()
    clock.observe(0.0, 1000.5)
    clock.observe(1.96, 1000.6)
    clock.observe(4.0, 1002.05)
    assert round(clock.offset or 0, 6) == 998.05
    assert round(clock.wall(10.0), 6) == 1008.05


def test_clock_settles_on_a_camera_running_slow_but_not_on_jitter() -> None:
    clock = WallClock(tolerance_s=1.0)
    clock.observe(0.0, 1000.0)
    clock.settle()
    clock.observe(60.0, 1060.4)  # jitter within tolerance: keep the offset
    clock.settle()
    assert clock.offset == 1000.0
    clock.observe(120.0, 1121.5)  # the camera clock lost 1.5 s
    clock.settle()
    assert clock.offset == 1001.5


def test_clock_settle_without_observations_keeps_the_offset() -> None:
    clock = WallClock()
    clock.observe(0.0, 1000.0)
    clock.settle()
    clock.settle()  # a segment without a keyframe observed
    assert clock.offset == 1000.0


def test_a_continuing_segment_starts_exactly_where_the_previous_ended() -> None:
    clock = WallClock()
    clock.observe(0.0, 1000.0)
    times = segment_times(60.0, 120.0, clock, previous_end=1060.0, contiguous=True)
    assert (times.start, times.end) == (1060.0, 1120.0)


def test_a_first_segment_never_overlaps_the_previous_one() -> None:
    clock = WallClock()
    clock.observe(0.0, 1000.0)
    times = segment_times(0.0, 6.0, clock, previous_end=1002.0, contiguous=False)
    assert (times.start, times.end) == (1002.0, 1008.0)


def test_segment_end_follows_the_clock_when_the_stream_drifted_too_far() -> None:
    clock = WallClock(tolerance_s=1.0)
    clock.observe(0.0, 1000.0)
    clock.observe(60.0, 1058.0)  # the camera clock runs fast: 60 s of stream in 58 s
    times = segment_times(0.0, 60.0, clock, previous_end=1000.0, contiguous=True)
    assert (times.start, times.end) == (1000.0, 1058.0)  # 2 s of drift taken back at the cut
    times = segment_times(0.0, 60.0, clock, previous_end=None, contiguous=False)
    assert (times.start, times.end) == (998.0, 1058.0)


def test_rtp_rounding_still_cuts_on_the_keyframe_at_the_target() -> None:
    # 10 s at 90 kHz sometimes arrives as 899,999 ticks.
    assert cut_tick(0, 10.0, 1 / 90_000, 0.1) <= 899_999
    assert cut_tick(0, 10.0, 1 / 90_000, 0.1) > 8 * 90_000
