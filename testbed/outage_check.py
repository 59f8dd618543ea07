"""Measure a recording's holes to the frame: burned-in counters against index rows and gaps."""

import contextlib
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from testbed.footage import FPS
from testbed.frames import read_frames

EDGE_S = 0.05  # a gap row this close to a hole's edges covers it


@dataclass(frozen=True)
class SegmentFrames:
    """One indexed segment and the counters of its first and last decoded frames."""

    path: str
    start: float
    end: float
    first: int
    last: int
    frames: int


@dataclass(frozen=True)
class Hole:
    """Footage missing between two consecutive segments of a camera."""

    before: str  # path of the segment before the hole
    after: str  # path of the segment after it
    index_s: float  # the index's hole: next start - previous end
    true_s: float  # the frames really missing, in seconds (burned-in counter)
    gap_rows: tuple[str, ...]  # reasons of the gap rows that cover it

    @property
    def error_s(self) -> float:
        """How far the index's hole is from the truth."""
        return self.index_s - self.true_s


def loop_frames(clip: Path) -> int:
    """Frames in one pass of a looped clip (the counter starts over after it)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v",
         "-show_entries", "stream=nb_read_packets", "-of", "json", str(clip)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return int(json.loads(out)["streams"][0]["nb_read_packets"])


def segment_frames(index_db: Path, storage: Path, camera: str) -> list[SegmentFrames]:
    """Every indexed segment of `camera` in time order, with its first and last counters."""
    with sqlite3.connect(f"file:{index_db}?mode=ro", uri=True) as db:
        rows = db.execute(
            'select path, start, "end" from segments where camera = ? order by start, id',
            [camera],
        ).fetchall()
    found = []
    for path, start, end in rows:
        frames = read_frames(storage / path, seconds=3600, timeout=120)
        found.append(
            SegmentFrames(path, start, end, frames[0].counter, frames[-1].counter, len(frames))
        )
    return found


def holes(index_db: Path, storage: Path, camera: str, loop: int) -> list[Hole]:
    """Every place where footage is missing, by the index or by the counters."""
    segments = segment_frames(index_db, storage, camera)
    with sqlite3.connect(f"file:{index_db}?mode=ro", uri=True) as db:
        gaps = db.execute(
            'select start, "end", reason from gaps where camera = ? order by start', [camera]
        ).fetchall()
    found = []
    for prev, nxt in zip(segments, segments[1:], strict=False):
        missing = (nxt.first - prev.last - 1) % loop
        index_s = nxt.start - prev.end
        if missing == 0 and abs(index_s) < EDGE_S:
            continue
        covering = _covering(gaps, prev.end, nxt.start)
        found.append(Hole(prev.path, nxt.path, index_s, missing / FPS, covering))
    return found


def _covering(
    gaps: list[tuple[float, float | None, str]], start: float, end: float
) -> tuple[str, ...]:
    """Reasons of the gap rows that together cover [start, end) without a hole; () if none."""
    reasons: list[str] = []
    reached = start
    for g_start, g_end, reason in gaps:  # sorted by start
        if g_start > reached + EDGE_S or (g_end is not None and g_end <= reached):
            continue
        reasons.append(reason)
        if g_end is None or g_end >= end - EDGE_S:
            return tuple(reasons)
        reached = g_end
    return ()


@contextlib.contextmanager
def kept_live(url: str) -> Iterator[None]:
    """Keep an RTSP path playing while the recorder under test comes and goes.

    The test server tears a media down when its last client leaves and starts the file
    over for the next one, which would rewind the counter; a real camera runs on, and so
    does a media with this second client reading it.
    """
    proc = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp",
         "-i", url, "-c", "copy", "-f", "null", "-"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        proc.kill()
        proc.wait(10)
