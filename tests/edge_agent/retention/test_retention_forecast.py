"""Pure forecast: observed bitrates, days the disk holds, retention at risk."""

from __future__ import annotations

import pytest

from edge_agent.config import EdgeConfig
from edge_agent.recording.index import Hold, Segment
from edge_agent.retention.forecast import (
    build_forecast,
    forecast_days,
    observed_rates,
    stats_from_segments,
)
from edge_agent.retention.planner import DAY

NOW = 1_000 * DAY
GB = 10**9


def seg(id: int, camera: str, start: float, seconds: float, size: int) -> Segment:
    return Segment(
        id, camera, f"{camera}/{id}.mp4", start, start + seconds, seconds, size,
        "h264", 1920, 1080, None, "0" * 64, "0" * 64, "0" * 64, 0, start,
    )  # fmt: skip


def config(cameras: dict[str, int], **storage: object) -> EdgeConfig:
    return EdgeConfig.model_validate(
        {
            "site_id": "s",
            "storage": {"path": "/x", "hard_min_free_percent": 0, "hard_min_free_bytes": 0}
            | storage,
            "cameras": [
                {
                    "id": c,
                    "name": c,
                    "station": "quarantine",
                    "main_url": "rtsp://127.0.0.1/x",
                    "retention_days": d,
                }
                for c, d in cameras.items()
            ],
        }
    )


def test_rate_is_bytes_per_recorded_second_over_the_last_day_of_each_camera() -> None:
    segments = [
        seg(1, "a", NOW - 3 * DAY, 60, 60_000),  # older than a day before a's newest: ignored
        seg(2, "a", NOW - 120, 60, 30_000),
        seg(3, "a", NOW - 60, 60, 90_000),
        seg(4, "b", NOW - 10 * DAY, 100, 1_000),  # b stopped long ago: its own last day counts
    ]
    assert observed_rates(segments) == {"a": 1000.0, "b": 10.0}


def test_equal_duties_hold_capacity_over_total_rate() -> None:
    assert forecast_days({"a": 1 * GB, "b": 3 * GB}, {"a": 90, "b": 90}, 200 * GB) == 50.0
    assert forecast_days({"a": 1 * GB}, {"a": 90}, 500 * GB) == 500.0


def test_short_duties_free_space_for_long_ones() -> None:
    # a (30 days) and b (90 days) at 1 GB/day each: 30 days of both cost 60 GB, then b alone.
    rates, duties = {"a": 1 * GB, "b": 1 * GB}, {"a": 30, "b": 90}
    assert forecast_days(rates, duties, 50 * GB) == 25.0
    assert forecast_days(rates, duties, 100 * GB) == 70.0
    assert forecast_days(rates, duties, 120 * GB) == 90.0
    assert forecast_days(rates, duties, 130 * GB) == 95.0  # spare space spread over both


def test_forecast_without_rates_or_space() -> None:
    assert forecast_days({}, {"a": 90}, 100 * GB) is None
    assert forecast_days({"a": 0.0}, {"a": 90}, 100 * GB) is None
    assert forecast_days({"a": 1 * GB}, {"a": 90}, -5 * GB) == 0.0


def test_build_forecast_flags_risk_days_before_the_duty_is_lost() -> None:
    # Each camera records 100 kB/s = 8.64 GB/day; 3 days recorded so far.
    segments = [
        seg(i * 2 + k, cam, NOW - 3 * DAY + i * 3600, 3600, 360_000_000)
        for i in range(72)
        for k, cam in enumerate(["a", "b"])
    ]
    used = sum(s.bytes for s in segments)
    holds = [Hold(1, "a", NOW - 3 * DAY, NOW - 3 * DAY + 1, "alert", None, NOW, None)]
    cfg = config({"a": 90, "b": 90}, risk_margin_days=7)

    def room_for(days: float) -> int:  # free bytes that leave room for `days` of both cameras
        return int(days * 2 * 8.64 * GB) - used + 360_000_000  # the held segment does not count

    fc = build_forecast(cfg, stats_from_segments(segments, holds), 4000 * GB, room_for(95), NOW)
    assert fc.days_forecast == pytest.approx(95.0)
    assert fc.held_bytes == 360_000_000
    # 95 days still covers the 90-day duty, but not the 7-day margin: warn now, not later.
    assert fc.at_risk and fc.at_risk_cameras == ["a", "b"]
    fc = build_forecast(cfg, stats_from_segments(segments, holds), 4000 * GB, room_for(98), NOW)
    assert fc.days_forecast == pytest.approx(98.0)
    assert not fc.at_risk


def test_at_risk_only_for_cameras_whose_duty_the_horizon_misses() -> None:
    hour = 3_600_000  # 1000 bytes per second for an hour
    segments = [seg(1, "a", NOW - 3600, 3600, hour), seg(2, "b", NOW - 3600, 3600, hour)]
    cfg = config({"a": 30, "b": 90, "c": 90}, risk_margin_days=7)
    # 30 days of both (a's duty), then 40 more days of b alone.
    capacity = (30 * 2000 + 40 * 1000) * int(DAY)
    fc = build_forecast(cfg, stats_from_segments(segments, []), 10**15, capacity - 2 * hour, NOW)
    assert fc.days_forecast == pytest.approx(70.0)
    # a needs 37 days, b needs 97; c has recorded nothing yet, so the forecast leaves it
    # out, but oldest-first eviction will not give it more than the others.
    assert fc.at_risk and fc.at_risk_cameras == ["b", "c"]
    assert fc.cameras_without_rate == ("c",)
    usage = {c.camera: c for c in fc.cameras}
    assert usage["a"].bytes_per_s == 1000.0 and usage["a"].days_held == pytest.approx(1 / 24)
    assert usage["c"].segments == 0 and usage["c"].bytes_per_s is None
    fc = build_forecast(
        cfg, stats_from_segments(segments, []), 10**15, capacity + 40_000 * int(DAY) - 2 * hour, NOW
    )
    assert fc.days_forecast == pytest.approx(100.0) and not fc.at_risk
