"""CPU of one camera's sub-stream path with live view and detection (2 fps) both on: the
former two RTSP sessions (a demux-only reader for live view plus detection's own
demux-and-decode session) against one shared reader whose packets detection decodes.

Each mode runs in a child process against the testbed RTSP server looping the same
footage; the child's CPU time over the measured window is what counts. Modes alternate,
`--rounds` times, to spread the shared machine's noise. Writes bench/results/sub_stream.json.

    .venv/bin/python bench/sub_stream.py [--seconds 30] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import av
import psutil

from edge_agent.config import CameraConfig, RecorderConfig
from edge_agent.credentials import CredentialStore
from edge_agent.detection.frames import DropOldestQueue, PacketFrameSource, sample_frames
from edge_agent.uplink.sub_reader import SubStreamReader
from edge_agent.uplink.tap import LiveTap
from testbed.footage import ensure_footage
from testbed.rtsp import RtspServer

RESULTS = Path(__file__).resolve().parent / "results" / "sub_stream.json"
MODES = ("two_sessions", "shared")
FPS, WIDTH, WARMUP_S = 2.0, 640, 3.0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sessions(port: int) -> int:
    return sum(
        1
        for c in psutil.Process().net_connections("tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.raddr and c.raddr.port == port
    )


def _own_session(url: str, frames: DropOldestQueue, stop: threading.Event) -> None:
    """Detection's former frame source: its own session, demux and decode, sampled."""
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=(10.0, 10.0)) as container:
        for frame in sample_frames(container, FPS, WIDTH, lambda s: time.time()):
            frames.put(frame)
            if stop.is_set():
                return


def child(mode: str, url: str, port: int, seconds: float) -> dict[str, Any]:
    """Run one mode for `seconds` after a warm-up; its CPU time, frames and sessions."""
    camera = CameraConfig.model_validate(
        {"id": "cam", "name": "Bench", "station": "quarantine", "main_url": url, "sub_url": url}
    )
    tap = LiveTap("cam", "sub")
    reader = SubStreamReader(camera, RecorderConfig(), CredentialStore(environ={}), tap)
    frames = DropOldestQueue(1000)
    stop = threading.Event()
    source: PacketFrameSource | None = None
    reader.start()
    if mode == "shared":
        source = PacketFrameSource("frames-cam", tap, frames, FPS, WIDTH)
        source.start()
    else:
        threading.Thread(target=_own_session, args=(url, frames, stop), daemon=True).start()
    time.sleep(WARMUP_S)
    cpu0, t0, n0, p0 = _cpu_s(), time.monotonic(), len(frames), tap.packets
    time.sleep(seconds)
    cpu, wall = _cpu_s() - cpu0, time.monotonic() - t0
    result = {
        "cpu_percent_of_a_core": round(100 * cpu / wall, 2),
        "frames_per_s": round((len(frames) - n0) / wall, 2),
        "packets_per_s": round((tap.packets - p0) / wall, 1),
        "rtsp_sessions": _sessions(port),
    }
    stop.set()
    if source is not None:
        source.stop()
    reader.stop()
    return result


def main() -> int:
    """Alternate the modes in child processes, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.url, args.port, args.seconds)))
        return 0
    footage = ensure_footage()
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    with RtspServer({"sub": footage.sub_h264}) as server:
        for _ in range(args.rounds):
            for mode in MODES:
                cmd = [sys.executable, __file__, "--child", mode, "--url", server.url("sub")]
                cmd += ["--port", str(server.port), "--seconds", str(args.seconds)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                runs[mode].append(json.loads(out.strip().splitlines()[-1]))
                print(mode, runs[mode][-1], flush=True)
    result: dict[str, Any] = {
        mode: {
            "cpu_percent_of_a_core": round(
                statistics.median(r["cpu_percent_of_a_core"] for r in rs), 2
            ),
            "rtsp_sessions": rs[0]["rtsp_sessions"],
            "frames_per_s": rs[0]["frames_per_s"],
            "runs": rs,
        }
        for mode, rs in runs.items()
    }
    result["footage"] = "testbed sub_h264: H.264 640x360, 25 fps, looped by the testbed server"
    result["detection_fps"] = FPS
    result["seconds_per_run"] = args.seconds
    result["machine"] = {
        "cores": os.cpu_count(),
        "load_1min_at_end": round(os.getloadavg()[0], 2),
        "note": "shared machine: other work may have run at the same time",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({m: result[m]["cpu_percent_of_a_core"] for m in MODES}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
