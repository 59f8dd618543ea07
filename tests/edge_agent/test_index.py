"""The segment index's queries: segments by time, gaps, camera states and evidence holds."""

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.recording.index import SegmentIndex, SegmentInfo


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SegmentIndex]:
    idx = SegmentIndex(tmp_path / "index.db")
    yield idx
    idx.close()


def info(camera: str, start: float, end: float) -> SegmentInfo:
    return SegmentInfo(camera, f"{camera}/{start:.0f}.mp4", start, end, 10, "h264", 1920, 1080,
                       None, "ab" * 32)  # fmt: skip


def test_segments_overlapping_a_range_oldest_first(index: SegmentIndex) -> None:
    for start in (120.0, 0.0, 60.0):
        index.add_segment(info("cam1", start, start + 60))
    index.add_segment(info("cam2", 0.0, 60.0))
    assert [s.start for s in index.segments("cam1")] == [0.0, 60.0, 120.0]
    assert [s.start for s in index.segments("cam1", start=60.0, end=120.0)] == [60.0]
    assert [s.start for s in index.segments("cam1", start=59.0, end=61.0)] == [0.0, 60.0]
    assert len(index.segments(start=0.0, end=1.0)) == 2  # both cameras
    assert index.segments("cam1", start=180.0) == []


def test_last_segment_paths_and_cameras(index: SegmentIndex) -> None:
    assert index.last_segment("cam1") is None
    index.add_segment(info("cam1", 0.0, 60.0))
    last = index.add_segment(info("cam1", 60.0, 120.0))
    index.add_segment(info("cam2", 0.0, 60.0))
    assert index.last_segment("cam1") == last
    assert last.duration == 60.0
    assert index.indexed_paths() == {"cam1/0.mp4", "cam1/60.mp4", "cam2/0.mp4"}
    assert index.cameras() == ["cam1", "cam2"]


def test_a_path_is_indexed_once(index: SegmentIndex) -> None:
    index.add_segment(info("cam1", 0.0, 60.0))
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        index.add_segment(info("cam1", 0.0, 60.0))
    assert len(index.segments("cam1")) == 1


def test_gaps_open_close_and_overlap_queries(index: SegmentIndex) -> None:
    first = index.open_gap("cam1", 100.0, "connection refused")
    index.close_gap(first, 150.0)
    index.open_gap("cam1", 300.0, "read timeout")
    index.open_gap("cam2", 10.0, "stream ended")
    gaps = index.gaps("cam1")
    assert [(g.start, g.end, g.reason) for g in gaps] == [
        (100.0, 150.0, "connection refused"),
        (300.0, None, "read timeout"),
    ]
    assert [g.start for g in index.gaps("cam1", start=200.0)] == [300.0]  # open: still on
    assert [g.start for g in index.gaps("cam1", end=120.0)] == [100.0]
    index.close_open_gaps("cam1", 400.0)
    assert index.gaps("cam1")[1].end == 400.0
    assert index.gaps("cam2")[0].end is None


def test_camera_states_in_time_order(index: SegmentIndex) -> None:
    index.record_state("cam1", "offline", "connection refused", ts=20.0)
    index.record_state("cam1", "online", "recording", ts=10.0)
    index.record_state("cam2", "online", "recording", ts=5.0)
    rows = index.states("cam1")
    assert [(r["ts"], r["state"], r["reason"]) for r in rows] == [
        (10.0, "online", "recording"),
        (20.0, "offline", "connection refused"),
    ]


def test_holds_are_released_by_id_or_reference(index: SegmentIndex) -> None:
    a = index.add_hold("cam1", 0.0, 60.0, "alert", ref="evt-1")
    b = index.add_hold("cam1", 30.0, 90.0, "alert", ref="evt-1")
    c = index.add_hold("cam2", 0.0, 10.0, "export")
    assert [h.id for h in index.active_holds("cam1")] == [a, b]
    assert index.release_hold(c)
    assert not index.release_hold(c)  # already released
    assert index.release_holds_by_ref("evt-1") == 2
    assert index.active_holds() == []
    with pytest.raises(ValueError, match="must end after"):
        index.add_hold("cam1", 10.0, 10.0, "empty")


def test_reopening_keeps_rows(tmp_path: Path) -> None:
    first = SegmentIndex(tmp_path / "index.db")
    first.add_segment(info("cam1", 0.0, 60.0))
    first.close()
    again = SegmentIndex(tmp_path / "index.db")
    assert [s.path for s in again.segments()] == ["cam1/0.mp4"]
    again.close()
