"""Recorded ranges and gaps of a camera, from the real segment index."""

from __future__ import annotations

from pathlib import Path

from edge_agent.recording.index import Segment, SegmentIndex, SegmentInfo
from edge_agent.uplink.recordings import merge_ranges, recorded, segments_after, segments_between

T = 1_767_225_600.0


def _seg(start: float, end: float, codec: str = "h264") -> Segment:
    return Segment(0, "c", "p", start, end, end - start, 1, codec, 1, 1, None, "", "", "", 0, 0)


def test_touching_segments_merge_and_holes_split() -> None:
    ranges = merge_ranges([_seg(0, 60), _seg(60.4, 120), _seg(130, 190), _seg(190, 200, "hevc")])
    assert [(r.start, r.end, r.codec) for r in ranges] == [
        (0, 120, "h264"),
        (130, 190, "h264"),
        (190, 200, "hevc"),
    ]


def _index(tmp_path: Path) -> SegmentIndex:
    index = SegmentIndex(tmp_path / "index.db")
    for i, (start, end) in enumerate([(0, 60), (60, 120), (300, 360), (360, 420)]):
        info = SegmentInfo(
            "cam1", f"cam1/x/{i}.mp4", T + start, T + end, 100, "h264", 640, 360, None, "ab" * 32
        )
        index.add_segment(info)
    gap = index.open_gap("cam1", T + 120, "connection refused")
    index.close_gap(gap, T + 300)
    return index


def test_a_day_of_ranges_and_gaps_clipped_to_the_question(tmp_path: Path) -> None:
    index = _index(tmp_path)
    reply = recorded(index, "cam1", T + 30, T + 400)
    assert reply["ranges"] == [
        {"start": T + 30, "end": T + 120, "codec": "h264"},
        {"start": T + 300, "end": T + 400, "codec": "h264"},
    ]
    assert reply["gaps"] == [{"start": T + 120, "end": T + 300, "reason": "connection refused"}]
    assert recorded(index, "cam2", T, T + 400)["ranges"] == []


def test_segment_queries_find_what_overlaps(tmp_path: Path) -> None:
    index = _index(tmp_path)
    assert [s.start - T for s in segments_between(index, "cam1", T + 59, T + 301)] == [0, 60, 300]
    assert [s.start - T for s in segments_after(index, "cam1", T + 130, limit=1)] == [300]
