"""Start-up repair: unknown files indexed, unplayable ones quarantined, missing rows removed."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
from recording_helpers import copy_clip, fill

from edge_agent.recording.index import SegmentIndex
from edge_agent.recording.paths import segment_relpath
from edge_agent.recording.probe import probe_segment
from edge_agent.recording.repair import QUARANTINE, repaired_start, scan_and_repair
from edge_agent.recording.segment_writer import SegmentFile
from testbed.footage import Footage

T0 = 1_795_000_000.0


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SegmentIndex]:
    idx = SegmentIndex(tmp_path / "index.db")
    yield idx
    idx.close()


def test_unindexed_file_is_probed_and_chained_as_repaired(
    footage: Footage, tmp_path: Path, index: SegmentIndex
) -> None:
    storage = tmp_path / "storage"
    index.add_segment(copy_clip(footage.main_h264_aac, storage, "cam1", T0, 4.0).seal())
    crashed = copy_clip(footage.main_h264_aac, storage, "cam1", T0 + 4.0, 2.0)

    report = scan_and_repair(index, storage)

    assert report.changed
    assert report.indexed == [crashed.relpath]
    first, second = index.segments_by_id("cam1")
    assert second.path == crashed.relpath
    assert second.repaired == 1
    assert second.start == first.end  # named to the second, placed on the exact seam
    assert second.end == pytest.approx(second.start + 2.0)
    assert (second.codec, second.width, second.audio_codec) == ("h264", 1920, "aac")
    assert index.verify_chain("cam1", storage) == []
    assert "1 unindexed segment(s) indexed" in report.summary()
    again = scan_and_repair(index, storage)
    assert not again.changed


def test_unplayable_file_is_moved_to_quarantine_not_deleted(
    tmp_path: Path, index: SegmentIndex
) -> None:
    storage = tmp_path / "storage"
    rel = segment_relpath("cam1", T0)
    (storage / rel).parent.mkdir(parents=True)
    (storage / rel).write_bytes(b"\0" * 4096)  # a crash before the header reached the disk

    report = scan_and_repair(index, storage)

    assert not (storage / rel).exists()
    assert (storage / QUARANTINE / rel).read_bytes() == b"\0" * 4096
    assert len(report.quarantined) == 1 and rel in report.quarantined[0]
    assert index.segments() == []
    assert rel in report.summary()
    assert not scan_and_repair(index, storage).changed  # .quarantine is not scanned again


def test_row_without_file_is_removed_with_a_gap_and_a_tombstone(
    footage: Footage, tmp_path: Path, index: SegmentIndex
) -> None:
    storage = tmp_path / "storage"
    kept = index.add_segment(copy_clip(footage.main_h264, storage, "cam1", T0, 2.0).seal())
    lost = index.add_segment(copy_clip(footage.main_h264, storage, "cam1", T0 + 2, 2.0).seal())
    (storage / lost.path).unlink()

    report = scan_and_repair(index, storage)

    assert report.missing == [lost.path]
    assert [s.path for s in index.segments("cam1")] == [kept.path]
    (gap,) = index.gaps("cam1")
    assert (gap.start, gap.end, gap.reason) == (lost.start, lost.end, "segment file missing")
    (tomb,) = index.removed_segments("cam1")
    assert tomb["path"] == lost.path
    assert index.verify_chain("cam1", storage) == []  # the agent's own removal, on record


def test_row_whose_whole_day_folder_is_gone_is_removed(
    footage: Footage, tmp_path: Path, index: SegmentIndex
) -> None:
    storage = tmp_path / "storage"
    seg = index.add_segment(copy_clip(footage.main_h264, storage, "cam2", T0, 2.0).seal())
    for path in sorted((storage / "cam2").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()

    report = scan_and_repair(index, storage)

    assert report.missing == [seg.path]
    assert index.segments() == []


def test_open_gaps_close_where_recording_resumed_or_now(
    footage: Footage, tmp_path: Path, index: SegmentIndex
) -> None:
    storage = tmp_path / "storage"
    resumed = copy_clip(footage.main_h264, storage, "cam1", T0 + 30, 2.0)
    index.add_segment(resumed.seal())
    index.open_gap("cam1", T0, "connection refused")
    index.open_gap("cam2", T0, "read timeout")

    report = scan_and_repair(index, storage)

    assert report.gaps_closed == 2
    (cam1_gap,) = index.gaps("cam1")
    assert cam1_gap.end == resumed.start
    (cam2_gap,) = index.gaps("cam2")
    assert cam2_gap.end is not None and cam2_gap.end > T0


def test_missing_storage_folder_is_nothing_to_repair(tmp_path: Path, index: SegmentIndex) -> None:
    assert not scan_and_repair(index, tmp_path / "absent").changed


def test_a_repaired_start_comes_from_the_header_not_snapped_over_an_outage() -> None:
    end = 1_764_547_260.0
    # 1.2 s after the previous end: a real outage (it used to be snapped onto it).
    assert repaired_start(end + 1.0, end + 1.2, end) == end + 1.2
    assert repaired_start(end, end + 0.0000004, end) == end  # rounding of the tag: continues
    assert repaired_start(end + 1.0, None, end) == end  # no tag (older file): the name's second
    assert repaired_start(end + 5.0, None, end) == end + 5.0


def test_an_estimated_header_start_yields_to_when_the_file_was_written() -> None:
    end = 1_764_547_260.0
    # A connection's first segment killed before it closed: its header start came from a
    # burst of buffered packets (1.1 s late); the last fragment's write time says better.
    assert repaired_start(end + 4.0, end + 5.1, end, written_start=end + 4.0) == end + 4.0
    # Written late (a busy box): the header's estimate stays.
    assert repaired_start(end + 4.0, end + 4.0, end, written_start=end + 4.3) == end + 4.0
    # Never before the previous segment's end.
    assert repaired_start(end, end + 0.5, end, written_start=end - 0.4) == end


def test_the_header_says_where_a_segment_starts_and_whether_it_was_estimated(
    footage: Footage, tmp_path: Path
) -> None:
    with av.open(str(footage.short_h264)) as src:
        segment = SegmentFile(tmp_path, "cam1", T0 + 0.25, src.streams.video[0], None,
                              estimated_start=True)  # fmt: skip
        fill(segment, src, 2.0)
    closed = segment.close(end=T0 + 2.25)
    probe = probe_segment(closed.path)
    assert (probe.start, probe.start_estimated) == (T0 + 0.25, True)


def test_a_crashed_first_segment_is_placed_by_the_recorders_later_estimate(
    footage: Footage, tmp_path: Path, index: SegmentIndex
) -> None:
    """The header holds the first guess (a burst at connect came 1.1 s late); the recorder
    learnt better at a later keyframe and kept that on the file; then it was killed while
    behind (its last write late)."""
    storage = tmp_path / "storage"
    with av.open(str(footage.short_h264)) as src:
        segment = SegmentFile(storage, "cam1", T0 + 1.1, src.streams.video[0], None,
                              estimated_start=True)  # fmt: skip
        fill(segment, src, 3.0)
        segment.note_start(T0 + 0.3)
        segment.note_start(T0 + 0.5)  # a later, worse estimate never replaces a better one
        crashed = tmp_path / "crashed.mp4"
        shutil.copy2(segment.path, crashed)  # what kill -9 leaves, attributes included
        rel = segment.relpath
        segment.discard()
    shutil.copy2(crashed, storage / rel)
    os.utime(storage / rel, (T0 + 4.5, T0 + 4.5))  # written last 0.4 s late

    scan_and_repair(index, storage)

    (repaired,) = index.segments_by_id("cam1")
    assert repaired.start == pytest.approx(T0 + 0.3)
