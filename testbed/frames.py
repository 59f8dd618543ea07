"""Decode a stream or file with ffmpeg and report each frame's pts and burned-in counter."""

import json
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from testbed.errors import TestbedError
from testbed.footage import read_frame_counter

WIDTH, HEIGHT = 640, 360  # every source is scaled to this before the counter is read
_PTS_TIME = re.compile(rb"\bn:\s*(\d+).*?\bpts_time:\s*([-\d.e+]+)")


@dataclass(frozen=True)
class SeenFrame:
    """One decoded frame: its pts in seconds (as ffmpeg reports it) and the footage counter."""

    pts: float
    counter: int


def read_frames(
    source: str | Path, seconds: float, timeout: float | None = None
) -> list[SeenFrame]:
    """Decode `seconds` of `source` (rtsp:// over TCP, or a file) into `SeenFrame`s."""
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "info", *_input_args(source)]
    cmd += ["-t", str(seconds), "-vf", f"scale={WIDTH}:{HEIGHT},format=gray,showinfo"]
    cmd += ["-fps_mode", "passthrough", "-an", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    stderr: list[bytes] = []
    reader = threading.Thread(target=_collect, args=(proc.stderr, stderr), daemon=True)
    reader.start()
    timer = threading.Timer(timeout or seconds + 30, proc.kill)
    timer.start()
    try:
        counters = _read_counters(proc.stdout)
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    pts = _pts_times(stderr)
    if proc.returncode != 0 or not counters:
        tail = b"".join(stderr)[-2000:].decode(errors="replace")
        raise TestbedError(f"ffmpeg could not decode {source} (exit {proc.returncode}):\n{tail}")
    return [SeenFrame(p, c) for p, c in zip(pts, counters, strict=False)]


def probe_streams(source: str | Path, timeout: float = 30.0) -> list[dict[str, Any]]:
    """ffprobe's stream list for `source` (codec_name, width, height, sample_rate, ...)."""
    cmd = ["ffprobe", "-v", "error", *_input_args(source), "-show_streams", "-of", "json"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise TestbedError(f"ffprobe failed on {source}: {result.stderr.strip()}")
    streams: list[dict[str, Any]] = json.loads(result.stdout)["streams"]
    return streams


def _input_args(source: str | Path) -> list[str]:
    text = str(source)
    if text.startswith("rtsp://"):
        return ["-rtsp_transport", "tcp", "-i", text]
    return ["-i", text]


def _read_counters(stdout: IO[bytes]) -> list[int]:
    size = WIDTH * HEIGHT
    counters = []
    while len(raw := stdout.read(size)) == size:
        image = np.frombuffer(raw, dtype=np.uint8).reshape(HEIGHT, WIDTH)
        counters.append(read_frame_counter(image))
    return counters


def _collect(stream: IO[bytes], into: list[bytes]) -> None:
    for line in stream:
        into.append(line)


def _pts_times(stderr: list[bytes]) -> list[float]:
    """pts_time of each showinfo line, in output order."""
    found: dict[int, float] = {}
    for line in stderr:
        if b"showinfo" in line and (match := _PTS_TIME.search(line)):
            found[int(match.group(1))] = float(match.group(2))
    return [found[n] for n in sorted(found)]
