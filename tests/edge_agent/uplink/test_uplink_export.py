"""Clip export: one MP4 by packet copy, and a manifest whose chain matches the index."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.errors import UplinkError
from edge_agent.recording.index import SegmentInfo, chain_hash
from edge_agent.uplink.export import export_clip
from fsv_common.digest import file_sha256
from fsv_contract.video import ManifestSegment, chain_problems, segment_link
from tests.edge_agent.uplink.conftest import T0, Recording, decoded_counters


def test_a_clip_spans_from_the_keyframe_before_to_the_end_across_an_outage(
    recording: Recording, tmp_path: Path
) -> None:
    out = tmp_path / "clip.mp4"
    second_start = recording.segments[3].start
    manifest = export_clip(
        recording.index, recording.storage, "site-a", "cam1", T0 + 4.5, second_start + 1.0, out
    )
    assert manifest.clip_start == pytest.approx(T0 + 4.0)
    assert manifest.clip_end < second_start + 1.0
    assert manifest.file.sha256 == file_sha256(out)
    assert manifest.file.bytes == out.stat().st_size
    assert [s.used for s in manifest.segments] == [True, True]
    assert chain_problems(manifest) == []
    frames = decoded_counters(out.read_bytes())
    assert frames[0][1] == 100  # the keyframe at 4.0 s of the clip
    assert len(frames) == 50 + 25  # 2 s before the outage, 1 s after it
    assert frames[50][0] == pytest.approx(second_start - (T0 + 4.0), abs=0.05)


def test_nothing_recorded_is_a_clear_error(recording: Recording, tmp_path: Path) -> None:
    with pytest.raises(UplinkError, match="recorded nothing"):
        export_clip(
            recording.index, recording.storage, "s", "cam1", T0 - 100, T0 - 50, tmp_path / "x.mp4"
        )


def test_the_contract_link_is_the_index_chain_hash() -> None:
    info = SegmentInfo(
        "cam1",
        "cam1/2026-01-01/00/00.00.mp4",
        T0,
        T0 + 60.5,
        1234,
        "h264",
        640,
        360,
        None,
        "cd" * 32,
    )
    prev = "ab" * 32
    seg = ManifestSegment(
        path=info.path,
        start=info.start,
        end=info.end,
        bytes=info.bytes,
        sha256=info.sha256,
        prev_chain=prev,
        chain="00" * 32,
    )
    assert segment_link(prev, "cam1", seg) == chain_hash(prev, info)
