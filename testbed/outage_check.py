"""Measure a recording's holes to the frame: burned-in counters against index rows and gaps."""

import contextlib
import json
import re
import sqlite3
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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


@dataclass(frozen=True)
class KillLoss:
    """Where the footage lost to one kill -9 and restart went, from the index and the log.

    The parts add up to the index's hole: `tail_s` (what the killed agent had received but
    not yet written: the fragment under way), `down_s` (the agent not running: from the kill
    to the restarted recorder's connect; `imports_s` of it before the new process logged
    its start) and `after_s` (from the connect to the first frame in a file). `after_s`
    splits into `keyframe_wait_s` (stream seconds from the first packet the camera sent to
    the keyframe that opened the file, from the agent's "recording" log line) and
    `handshake_s`, the rest: from the connect to the stream playing (TCP connect, DESCRIBE,
    SETUP, PLAY and the first packet's arrival). The stream probing that ends av.open is
    in neither: the packets it reads are kept and recorded.
    """

    kill: float
    true_s: float  # frames really missing (burned-in counter), in seconds
    tail_s: float
    down_s: float
    imports_s: float
    after_s: float
    keyframe_wait_s: float

    @property
    def handshake_s(self) -> float:
        """From the connect to the stream playing: `after_s` less the keyframe wait."""
        return self.after_s - self.keyframe_wait_s

    @property
    def beyond_downtime_s(self) -> float:
        """The frames lost that the agent's downtime does not explain: tail and keyframe wait."""
        return self.true_s - self.down_s


_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
_KEYFRAME_WAIT = re.compile(r"keyframe wait (\d+\.\d+) s of stream")


def log_lines(log: str, needle: str) -> list[tuple[float, str]]:
    """UTC epoch times (UTC `asctime`) and text of the agent's log lines holding `needle`."""
    found = []
    for line in log.splitlines():
        match = _LOG_TIME.match(line)
        if match and needle in line:
            when = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
            found.append((when.timestamp(), line))
    return found


def log_times(log: str, needle: str) -> list[float]:
    """UTC epoch times of the agent's log lines that contain `needle`."""
    return [when for when, _ in log_lines(log, needle)]


def keyframe_waits(log: str, camera: str) -> list[tuple[float, float]]:
    """(log time, keyframe wait in stream seconds) of each of `camera`'s first frames."""
    found = []
    for when, line in log_lines(log, f"{camera}: recording (first frame written"):
        match = _KEYFRAME_WAIT.search(line)
        if match:
            found.append((when, float(match[1])))
    return found


def kill_losses(
    index_db: Path, found: Sequence[Hole], kills: Sequence[float], log: str, camera: str
) -> list[KillLoss]:
    """Each kill's hole split into its parts; holes no kill explains are left out."""
    with sqlite3.connect(f"file:{index_db}?mode=ro", uri=True) as db:
        rows = db.execute('select path, start, "end" from segments where camera = ?', [camera])
        bounds = {path: (start, end) for path, start, end in rows}
    connects = log_times(log, f"{camera}: connecting")
    starts = log_times(log, "] edge_agent: edge-agent ")  # "edge-agent 0.1.0 starting"
    waits = keyframe_waits(log, camera)
    losses = []
    for hole in found:
        prev_end = bounds[hole.before][1]
        next_start = bounds[hole.after][0]
        kill = next((k for k in kills if prev_end - 1.0 < k < next_start), None)
        connect = next((t for t in connects if kill is not None and t > kill), None)
        started = next((t for t in starts if kill is not None and t > kill), None)
        wait = next((w for t, w in waits if connect is not None and t >= connect), None)
        if kill is None or connect is None or started is None or wait is None:
            continue
        losses.append(
            KillLoss(
                kill=kill,
                true_s=hole.true_s,
                tail_s=kill - prev_end,
                down_s=connect - kill,
                imports_s=started - kill,
                after_s=next_start - connect,
                keyframe_wait_s=wait,
            )
        )
    return losses


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
