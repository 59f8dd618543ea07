"""Start-up repair: make the segment index agree with the files on disk after a crash."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.recording.index import SegmentIndex, SegmentInfo, file_sha256
from edge_agent.recording.paths import iter_segment_files, parse_relpath
from edge_agent.recording.probe import probe_segment

log = logging.getLogger(__name__)

QUARANTINE = ".quarantine"
CONTIGUOUS_S = 1.5  # a file named this close to the previous segment's end continues it


@dataclass
class RepairReport:
    """What the start-up repair changed."""

    indexed: list[str] = field(default_factory=list)  # files on disk the index lacked
    quarantined: list[str] = field(default_factory=list)  # unplayable files moved aside
    missing: list[str] = field(default_factory=list)  # index rows whose file was gone
    gaps_closed: int = 0

    @property
    def changed(self) -> bool:
        """Whether anything was repaired."""
        return bool(self.indexed or self.quarantined or self.missing or self.gaps_closed)

    def summary(self) -> str:
        """One line for the log."""
        parts = [
            f"{len(self.indexed)} unindexed segment(s) indexed",
            f"{len(self.quarantined)} unplayable file(s) moved to {QUARANTINE}/",
            f"{len(self.missing)} index row(s) without a file removed",
            f"{self.gaps_closed} open gap(s) closed",
        ]
        text = "; ".join(parts)
        if self.quarantined:
            text += " (quarantined: " + ", ".join(self.quarantined) + ")"
        if self.missing:
            text += " (missing: " + ", ".join(self.missing) + ")"
        return text


def scan_and_repair(index: SegmentIndex, storage: Path) -> RepairReport:
    """Index unknown segment files, quarantine unplayable ones, forget rows without a file.

    Run it before the recorders start: a file being written would look like a crash leftover.
    Files are never deleted; unplayable ones move to `{storage}/.quarantine/` with their path.
    """
    report = RepairReport()
    if not storage.is_dir():
        return report
    on_disk = {p.relative_to(storage).as_posix(): p for p in iter_segment_files(storage)}
    _forget_missing(index, set(on_disk), report)
    known = index.indexed_paths()
    for rel, path in sorted(on_disk.items()):
        if rel not in known:
            _index_or_quarantine(index, storage, rel, path, report)
    _close_open_gaps(index, report)
    return report


def _forget_missing(index: SegmentIndex, on_disk: set[str], report: RepairReport) -> None:
    for segment in index.segments():
        if segment.path in on_disk:
            continue
        log.error("segment %s is in the index but not on disk; removing its row", segment.path)
        index.delete_segments([segment.id])
        gap = index.open_gap(segment.camera, segment.start, "segment file missing")
        index.close_gap(gap, segment.end)
        report.missing.append(segment.path)


def _index_or_quarantine(
    index: SegmentIndex, storage: Path, rel: str, path: Path, report: RepairReport
) -> None:
    parsed = parse_relpath(rel)
    assert parsed is not None  # iter_segment_files yields segment-shaped names only
    camera, named_start = parsed
    probe = probe_segment(path)
    if not probe.playable:
        target = storage / QUARANTINE / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
        log.error("segment %s is not playable (%s); moved to %s", rel, probe.problem, target)
        report.quarantined.append(f"{rel} ({probe.problem})")
        return
    start = named_start
    previous = index.last_segment(camera)
    if previous is not None and abs(previous.end - named_start) < CONTIGUOUS_S:
        start = previous.end  # the name has one-second resolution; the chain is exact
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # what the hash covers must be what survives the next power cut
    finally:
        os.close(fd)
    index.add_segment(
        SegmentInfo(
            camera=camera,
            path=rel,
            start=start,
            end=start + probe.duration,
            bytes=path.stat().st_size,
            codec=probe.codec,
            width=probe.width,
            height=probe.height,
            audio_codec=probe.audio_codec,
            sha256=file_sha256(path),
            repaired=True,
        )
    )
    log.warning(
        "segment %s was not indexed (crash while writing); indexed %.1f s", rel, probe.duration
    )
    report.indexed.append(rel)


def _close_open_gaps(index: SegmentIndex, report: RepairReport) -> None:
    """End each open gap where recording resumed, or now if it never did."""
    now = time.time()
    for gap in index.gaps():
        if gap.end is not None:
            continue
        after = index.segments(gap.camera, start=gap.start)
        later = [s.start for s in after if s.start >= gap.start]
        index.close_gap(gap.id, min(later) if later else now)
        report.gaps_closed += 1
