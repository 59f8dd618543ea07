"""`edge-agent verify`: rehash the segment files on disk against the index and its hash chain."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from edge_agent.config import EdgeConfig
from edge_agent.errors import StorageReportError
from edge_agent.recording.index import GENESIS, Segment, SegmentInfo, chain_hash
from edge_agent.recording.paths import iter_segment_files, parse_relpath
from edge_agent.retention import queries
from fsv_common.digest import file_sha256

# A file this young without a row may be the one a running agent is writing right now.
IN_PROGRESS_S = 15.0


@dataclass
class VerifyReport:
    """What a verification found: one line per problem, and how much was checked."""

    problems: list[str] = field(default_factory=list)
    segments: int = 0
    bytes: int = 0
    cameras: int = 0

    def summary(self) -> str:
        """One closing line."""
        checked = f"{self.segments} segment(s), {self.bytes} bytes, {self.cameras} camera(s)"
        if not self.problems:
            return f"verified {checked}: OK"
        return f"verified {checked}: {len(self.problems)} problem(s)"


@dataclass(frozen=True)
class _Row:
    segment: Segment
    removed: bool  # a tombstone: the agent deleted it (retention, repair); only its link counts


def verify_footage(
    config: EdgeConfig,
    camera: str | None = None,
    start: float | None = None,
    end: float | None = None,
    now: float | None = None,
) -> VerifyReport:
    """Check every segment of [start, end) (all cameras, or `camera`) and the whole chain.

    Reported: a broken link or a row whose chain hash does not match its facts (an index
    edited behind the agent's back), a file that is missing, shorter or longer than
    indexed, or whose SHA-256 differs, and a segment-named file the index does not know.
    """
    now = time.time() if now is None else now
    path = config.state_dir / "index.db"
    if not path.is_file():
        raise StorageReportError(f"no segment index at {path} (has the agent run yet?)")
    report = VerifyReport()
    try:
        db = queries.open_readonly(path)
        try:
            cameras = [camera] if camera else _cameras(db, config)
            for cam in cameras:
                report.cameras += 1
                rows = _chain_rows(db, cam)
                if not rows and cam not in {c.id for c in config.cameras}:
                    raise StorageReportError(f"camera {cam!r} is neither configured nor indexed")
                report.problems += _chain_problems(cam, rows)
                in_range = [r for r in rows if _overlaps(r.segment, start, end)]
                _check_files(config.storage.path, cam, in_range, report)
                known = {r.segment.path for r in rows if not r.removed}
                report.problems += _unindexed(config.storage.path, cam, known, start, end, now)
        finally:
            db.close()
    except sqlite3.Error as e:
        raise StorageReportError(f"cannot read the segment index {path}: {e}") from e
    return report


def _cameras(db: sqlite_utils.Database, config: EdgeConfig) -> list[str]:
    indexed = {r[0] for r in db.execute("select distinct camera from segments").fetchall()}
    return sorted(indexed | {c.id for c in config.cameras})


def _chain_rows(db: sqlite_utils.Database, camera: str) -> list[_Row]:
    """Live rows and tombstones of a camera in the order they were chained."""
    rows = [
        _Row(Segment(**r), False) for r in db.table("segments").rows_where("camera = ?", [camera])
    ]
    for r in db.table("removed_segments").rows_where("camera = ?", [camera]):
        r.pop("removed_at")
        r.pop("reason")
        rows.append(_Row(Segment(**r), True))
    return sorted(rows, key=lambda row: row.segment.id)


def _facts(seg: Segment) -> SegmentInfo:
    return SegmentInfo(
        seg.camera, seg.path, seg.start, seg.end, seg.bytes, seg.codec, seg.width,
        seg.height, seg.audio_codec, seg.sha256,
    )  # fmt: skip


def _chain_problems(camera: str, rows: Sequence[_Row]) -> list[str]:
    problems: list[str] = []
    prev = GENESIS
    for row in rows:
        seg = row.segment
        where = _where(camera, seg.path, seg.start)
        if seg.prev_chain != prev:
            problems.append(f"{where}: does not link to the segment chained before it")
        if chain_hash(seg.prev_chain, _facts(seg)) != seg.chain:
            problems.append(f"{where}: index row changed (chain hash does not match its facts)")
        prev = seg.chain
    return problems


def _check_files(storage: Path, camera: str, rows: Sequence[_Row], report: VerifyReport) -> None:
    for row in rows:
        if row.removed:
            continue
        seg = row.segment
        report.segments += 1
        file = storage / seg.path
        where = _where(camera, seg.path, seg.start)
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            report.problems.append(f"{where}: file missing")
            continue
        except OSError as e:
            report.problems.append(f"{where}: file unreadable ({e.strerror})")
            continue
        report.bytes += size
        if size != seg.bytes:
            report.problems.append(f"{where}: size {size} bytes, indexed {seg.bytes} bytes")
            continue
        try:
            digest = file_sha256(file)
        except OSError as e:
            report.problems.append(f"{where}: file unreadable ({e.strerror})")
            continue
        if digest != seg.sha256:
            report.problems.append(
                f"{where}: content changed (SHA-256 {digest[:16]}…, indexed {seg.sha256[:16]}…)"
            )


def _unindexed(
    storage: Path,
    camera: str,
    known: set[str],
    start: float | None,
    end: float | None,
    now: float,
) -> list[str]:
    problems = []
    for file in _segment_files(storage, camera):
        rel = file.relative_to(storage).as_posix()
        parsed = parse_relpath(rel)
        if rel in known or parsed is None:
            continue
        named = parsed[1]
        if (start is not None and named + 1 <= start) or (end is not None and named >= end):
            continue
        try:
            if now - file.stat().st_mtime < IN_PROGRESS_S:
                continue  # being written by the running agent
        except OSError:
            continue
        problems.append(f"{_where(camera, rel, named)}: file is not in the index")
    return problems


def _segment_files(storage: Path, camera: str) -> Iterator[Path]:
    if (storage / camera).is_dir():
        yield from iter_segment_files(storage, camera)


def _overlaps(seg: Segment, start: float | None, end: float | None) -> bool:
    return (start is None or seg.end > start) and (end is None or seg.start < end)


def _where(camera: str, path: str, start: float) -> str:
    return f"{camera} {datetime.fromtimestamp(start, UTC):%Y-%m-%dT%H:%M:%SZ} {path}"


def parse_time(text: str) -> float:
    """An ISO 8601 time (UTC unless it names a zone) as epoch seconds."""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise ValueError(f"not an ISO 8601 time: {text!r} (e.g. 2026-12-01T08:00:00Z)") from e
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


def print_verify(
    config: EdgeConfig, camera: str | None, start: float | None, end: float | None
) -> int:
    """Print one line per problem and a summary; returns 1 if anything is wrong, else 0."""
    report = verify_footage(config, camera, start, end)
    for line in report.problems:
        print(line)
    print(report.summary())
    return 1 if report.problems else 0
