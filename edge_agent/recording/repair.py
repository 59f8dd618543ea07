"""Start-up repair: make the segment index agree with the files on disk after a crash."""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.recording.index import SegmentIndex, SegmentInfo
from edge_agent.recording.paths import parse_relpath
from edge_agent.recording.probe import probe_segment
from edge_agent.recording.segment_writer import noted_start
from fsv_common.digest import file_sha256

log = logging.getLogger(__name__)

QUARANTINE = ".quarantine"
MISSING = "file missing at start-up"  # the tombstone's reason in the index
_CAMERA = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A file without the exact start in its header (written before it was kept there) and named
# this close to the previous segment's end is taken to continue it.
CONTIGUOUS_S = 1.5
TAG_ROUNDING_S = 1e-3  # an exact start this close to the previous end continues it


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
    Disk and index are compared one camera-day at a time, so 90 days of a site's segments
    are never held in memory at once.
    """
    report = RepairReport()
    if not storage.is_dir():
        return report
    for camera in sorted(_cameras_on_disk(storage) | set(index.cameras())):
        days = _days_on_disk(storage, camera) | _days_in_index(index, camera)
        for day in sorted(days):
            _repair_day(index, storage, camera, day, report)
    _close_open_gaps(index, report)
    return report


def _cameras_on_disk(storage: Path) -> set[str]:
    return {p.name for p in storage.iterdir() if p.is_dir() and _CAMERA.match(p.name)}


def _days_on_disk(storage: Path, camera: str) -> set[str]:
    root = storage / camera
    if not root.is_dir():
        return set()
    return {p.name for p in root.iterdir() if p.is_dir() and _DAY.match(p.name)}


def _days_in_index(index: SegmentIndex, camera: str) -> set[str]:
    with index.reading() as db:
        rows = db.execute(
            "select distinct substr(path, ?, 10) from segments where camera = ?",
            [len(camera) + 2, camera],
        ).fetchall()
    return {r[0] for r in rows if _DAY.match(r[0])}


def _repair_day(
    index: SegmentIndex, storage: Path, camera: str, day: str, report: RepairReport
) -> None:
    prefix = f"{camera}/{day}/"
    folder = storage / camera / day
    on_disk: dict[str, Path] = {}
    if folder.is_dir():
        for path in folder.glob("*/*.mp4"):
            rel = path.relative_to(storage).as_posix()
            if parse_relpath(rel) is not None:
                on_disk[rel] = path
    with index.reading() as db:
        # A range on the unique path index ('0' sorts right after '/').
        rows = db.execute(
            'select id, path, start, "end" from segments where path >= ? and path < ?',
            [prefix, prefix[:-1] + "0"],
        ).fetchall()
    for seg_id, rel, start, end in rows:
        if rel not in on_disk:
            _forget_missing(index, camera, seg_id, rel, start, end, report)
    known = {row[1] for row in rows}
    for rel in sorted(set(on_disk) - known):
        _index_or_quarantine(index, storage, rel, on_disk[rel], report)


def _forget_missing(
    index: SegmentIndex,
    camera: str,
    seg_id: int,
    rel: str,
    start: float,
    end: float,
    report: RepairReport,
) -> None:
    log.error("segment %s is in the index but not on disk; removing its row", rel)
    index.delete_segments([seg_id], reason=MISSING)
    gap = index.open_gap(camera, start, "segment file missing")
    index.close_gap(gap, end)
    report.missing.append(rel)


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
    previous = index.last_segment(camera)
    # A file whose header start was an estimate: the last fragment reached the disk when the
    # packet after it arrived, so the file's modification time less its duration places it;
    # so does the recorder's later estimate kept on the file. The earliest is the best.
    written = None
    if probe.start_estimated:
        written = path.stat().st_mtime - probe.duration
        noted = noted_start(path)
        if noted is not None:
            written = min(written, noted)
    start = repaired_start(named_start, probe.start, previous.end if previous else None, written)
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


def repaired_start(
    named: float,
    exact: float | None,
    previous_end: float | None,
    written_start: float | None = None,
) -> float:
    """Where an unindexed file begins on the timeline.

    The recorder writes the start into the header: a real outage before the file, however
    short, stays a hole (only rounding that overlaps the previous end is clipped). A
    connection's first segment has only an estimate there, late by however long packets
    buffered at connect took to arrive; `written_start` (from when its last fragment was
    written) is taken when earlier. Without a header start the name's one second is all
    there is, so a name within CONTIGUOUS_S of the previous end is taken to continue it.
    """
    if exact is not None:
        if written_start is not None:
            exact = min(exact, written_start)
        if previous_end is not None and exact - previous_end < TAG_ROUNDING_S:
            return previous_end  # the tag's six decimals: the file continues the previous one
        return exact
    if previous_end is not None and abs(previous_end - named) < CONTIGUOUS_S:
        return previous_end
    return named


def _close_open_gaps(index: SegmentIndex, report: RepairReport) -> None:
    """End each open gap where recording resumed, or now if it never did."""
    now = time.time()
    for gap in index.gaps():
        if gap.end is not None:
            continue
        with index.reading() as db:
            resumed = db.execute(
                "select min(start) from segments where camera = ? and start >= ?",
                [gap.camera, gap.start],
            ).fetchone()[0]
        index.close_gap(gap.id, resumed if resumed is not None else now)
        report.gaps_closed += 1
