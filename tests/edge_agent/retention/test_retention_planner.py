"""Pure retention decisions: expiry by duty, oldest-first watermark eviction, holds."""

from __future__ import annotations

from edge_agent.config import EdgeConfig, StorageConfig
from edge_agent.recording.index import Hold, Segment
from edge_agent.retention.planner import (
    DAY,
    fallback_retention_days,
    is_held,
    plan_expiry,
    plan_watermark,
    required_free_bytes,
    watermark_deficit,
)

NOW = 1_000 * DAY


def seg(id: int, camera: str, start: float, end: float | None = None, size: int = 100) -> Segment:
    end = start + 60 if end is None else end
    return Segment(
        id, camera, f"{camera}/{id}.mp4", start, end, end - start, size,
        "h264", 1920, 1080, None, "0" * 64, "0" * 64, "0" * 64, 0, start,
    )  # fmt: skip


def hold(camera: str, start: float, end: float) -> Hold:
    return Hold(1, camera, start, end, "alert", "evt-1", NOW, None)


def test_expiry_deletes_only_segments_wholly_past_their_cameras_duty() -> None:
    old_a = seg(1, "a", NOW - 91 * DAY)
    straddling_a = seg(2, "a", NOW - 90 * DAY - 30)  # ends 30 s inside the duty
    fresh_a = seg(3, "a", NOW - 10 * DAY)
    old_b = seg(4, "b", NOW - 31 * DAY)
    segments = [fresh_a, old_b, straddling_a, old_a]
    assert plan_expiry(segments, [], {"a": 90, "b": 30}, NOW) == [1, 4]


def test_expiry_keeps_held_segments_and_unknown_cameras_get_the_default_duty() -> None:
    held = seg(1, "a", NOW - 200 * DAY)
    other_camera_same_time = seg(2, "b", NOW - 200 * DAY)
    removed_camera = seg(3, "gone", NOW - 60 * DAY)
    holds = [hold("a", NOW - 200 * DAY + 10, NOW - 200 * DAY + 20)]
    segments = [held, other_camera_same_time, removed_camera]
    assert plan_expiry(segments, holds, {"a": 90, "b": 90}, NOW, default_days=90) == [2]
    assert plan_expiry(segments, holds, {"a": 90, "b": 90}, NOW, default_days=30) == [2, 3]


def test_hold_overlap_is_half_open() -> None:
    s = seg(1, "a", 1000, 1060)
    assert is_held(s, [hold("a", 1059, 2000)])
    assert not is_held(s, [hold("a", 1060, 2000)])
    assert not is_held(s, [hold("a", 900, 1000)])
    assert not is_held(s, [hold("b", 0, 5000)])


def test_watermark_takes_oldest_first_across_cameras_until_enough() -> None:
    segments = [seg(1, "a", 0), seg(2, "b", 30), seg(3, "a", 60), seg(4, "b", 90), seg(5, "a", 120)]
    assert plan_watermark(segments, [], 250) == [1, 2, 3]
    assert plan_watermark(segments, [], 200) == [1, 2]
    assert plan_watermark(segments, [], 0) == []


def test_watermark_skips_held_and_excluded_segments() -> None:
    segments = [seg(1, "a", 0), seg(2, "b", 30), seg(3, "a", 60), seg(4, "b", 90)]
    holds = [hold("a", 0, 10)]
    assert plan_watermark(segments, holds, 200, exclude=[2]) == [3, 4]
    assert plan_watermark(segments, [hold("a", 0, 100), hold("b", 0, 100)], 10**9) == []


def test_required_free_is_the_larger_of_percent_and_bytes() -> None:
    storage = StorageConfig(path="/x", hard_min_free_percent=5.0, hard_min_free_bytes=1000)
    assert required_free_bytes(storage, 100_000) == 5000
    assert required_free_bytes(storage, 10_000) == 1000
    assert required_free_bytes(storage, 1_500) == 750  # a floor beyond the disk is capped


def test_watermark_deficit_adds_one_interval_of_writing() -> None:
    assert (
        watermark_deficit(free_bytes=5600, required_bytes=5000, write_bytes_per_s=10, interval_s=60)
        == 0
    )
    # Still above the watermark, but one interval of writing would take it under: evict now.
    assert watermark_deficit(5000, 5000, write_bytes_per_s=10, interval_s=60) == 600
    assert watermark_deficit(4000, 5000, write_bytes_per_s=10, interval_s=60) == 1600
    assert watermark_deficit(4000, 5000, write_bytes_per_s=0, interval_s=60) == 1000


def test_removed_cameras_keep_the_longest_duty_in_force() -> None:
    base = {"site_id": "s", "storage": {"path": "/x"}}
    cam = {"name": "n", "station": "quarantine", "main_url": "rtsp://127.0.0.1/x"}
    config = EdgeConfig.model_validate(
        {**base, "cameras": [{**cam, "id": "a", "retention_days": 30}]}
    )
    assert fallback_retention_days(config) == 90
    config = EdgeConfig.model_validate(
        {**base, "cameras": [{**cam, "id": "a", "retention_days": 365}]}
    )
    assert fallback_retention_days(config) == 365
