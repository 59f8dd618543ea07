"""What the recording benchmarks share: the test clip, what a recorded file holds, the machine.

bench/record.py and bench/outages.py both play testbed's 1080p clip (burned-in frame
counter, 2 s GOP) and describe the machine they ran on the same way.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model  # noqa: E402
from testbed.footage import FPS, GOP_FRAMES, ensure_footage  # noqa: E402
from testbed.outage_check import loop_frames  # noqa: E402


@dataclass(frozen=True)
class Clip:
    """The main-stream clip every simulated camera loops."""

    path: Path
    seconds: float  # one pass
    frames: int  # one pass (the burned-in counter starts over after it)
    bitrate_bps: float
    fps: int = FPS
    gop_s: float = GOP_FRAMES / FPS


def main_clip() -> Clip:
    """Make the footage if it is not cached yet, and measure its main-stream clip."""
    path = ensure_footage().main_h264
    with av.open(str(path)) as clip:
        seconds = float(clip.duration or 1) / 1_000_000
    return Clip(path, seconds, loop_frames(path), path.stat().st_size * 8 / seconds)


def video_steps(path: Path) -> tuple[float, int]:
    """Video duration of a recorded file and the frames missing from its timestamp steps."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        tb = v.time_base or Fraction(1, 90000)
        frame = 1 / (FPS * tb)
        pts = sorted(p.pts for p in c.demux(v) if p.pts is not None and p.size)
    missing = sum(max(0, round((b - a) / frame) - 1) for a, b in zip(pts, pts[1:], strict=False))
    duration = float((pts[-1] - pts[0] + frame) * tb) if pts else 0.0
    return duration, missing


def ffmpeg_version() -> str:
    """The first line of `ffmpeg -version`."""
    out = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=False)
    return out.stdout.split("\n", 1)[0]


def machine() -> dict[str, Any]:
    """CPU model, cores, software versions and the load average now."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pyav": av.__version__,
        "ffmpeg": ffmpeg_version(),
        "loadavg_before": load(),
    }


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]
