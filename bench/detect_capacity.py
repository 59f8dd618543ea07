"""Detection capacity by running it: N cameras at once on the RTSP testbed, each recording
its 1080p main stream and analysing its 640x360 sub stream at 1 fps with the default model
(people in every frame, so the motion gate never skips), in one edge agent.

After a warm-up, counts over a window how many frames each camera analysed and dropped and
what the recorders received. A run's `cameras_at_1fps_measured` is N when every camera
analysed at least 0.9 frames/s with no frame dropped and the recorders lost nothing, else the
number of cameras that did; each run is kept in bench/results/detect.json (`capacity_runs`,
by N) and the best run's figure is its `cameras_at_1fps_measured`.

    PYTHONPATH=. .venv/bin/python bench/detect_capacity.py [--cameras 16] [--seconds 40]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_agent.app import EdgeAgent  # noqa: E402
from edge_agent.config import EdgeConfig  # noqa: E402
from edge_agent.credentials import CredentialStore  # noqa: E402
from edge_agent.detection.pipeline import CameraDetection  # noqa: E402
from testbed.footage import ensure_footage  # noqa: E402
from testbed.ports import free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "detect.json"
WARMUP_S = 20.0
MIN_FPS = 0.9


def start_server(cameras: int, main: Path, sub: Path) -> tuple[subprocess.Popen[str], int]:
    """One RTSP server with camNN (main) and camNN_sub paths, all looping the footage."""
    port = free_port()
    cmd = ["/usr/bin/python3", str(ROOT / "testbed" / "rtsp_server.py"), "--port", str(port)]
    for i in range(cameras):
        cmd += ["--path", f"cam{i:02d}={main}", "--path", f"cam{i:02d}_sub={sub}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise SystemExit(f"RTSP server did not start: {line!r}")
    return proc, port


def agent_config(cameras: int, port: int, root: Path) -> EdgeConfig:
    """N cameras at the rest-pen station (person rules that work), detection at 1 fps."""
    url = f"rtsp://127.0.0.1:{port}"
    return EdgeConfig.model_validate(
        {
            "site_id": "bench",
            "storage": {"path": str(root / "rec")},
            "data_dir": str(root / "state"),
            "detection": {"fps": 1, "threads": 1},
            "cameras": [
                {
                    "id": f"cam{i:02d}",
                    "name": f"bench {i}",
                    "station": "rest_pen",
                    "main_url": f"{url}/cam{i:02d}",
                    "sub_url": f"{url}/cam{i:02d}_sub",
                }
                for i in range(cameras)
            ],  # fmt: skip
        }
    )


def counters(agent: EdgeAgent) -> dict[str, Any]:
    """Per camera: frames analysed and dropped; recorders: video packets and drops."""
    cams = [d for d in agent.detection if isinstance(d, CameraDetection)]
    return {
        "analysed": {c.camera.id: c.frames for c in cams},
        "dropped": {c.camera.id: c.dropped for c in cams},
        "errors": {c.camera.id: c.error for c in cams if c.error},
        "recorded": sum(r.counters.video_packets for r in agent.recorders),
        "recorder_dropped": sum(r.status().dropped for r in agent.recorders),
    }


def run(cameras: int, seconds: float) -> dict[str, Any]:
    """One run of `cameras` cameras; the window's figures."""
    footage = ensure_footage()
    server, port = start_server(cameras, footage.main_h264, footage.sub_h264)
    me = psutil.Process()
    try:
        with tempfile.TemporaryDirectory(prefix="detect-capacity-") as tmp:
            agent = EdgeAgent(agent_config(cameras, port, Path(tmp)), CredentialStore(None, {}))
            agent.start()
            try:
                time.sleep(WARMUP_S)
                before, cpu0, t0 = counters(agent), me.cpu_times(), time.monotonic()
                time.sleep(seconds)
                after, cpu1, t1 = counters(agent), me.cpu_times(), time.monotonic()
            finally:
                agent.stop()
    finally:
        server.kill()
        server.wait()
    window = t1 - t0
    rates = {k: (after["analysed"][k] - before["analysed"][k]) / window for k in after["analysed"]}
    dropped = {k: after["dropped"][k] - before["dropped"][k] for k in after["dropped"]}
    ok = [k for k in rates if rates[k] >= MIN_FPS and dropped[k] == 0]
    recorder_lost = after["recorder_dropped"] - before["recorder_dropped"]
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / window
    return {
        "cameras_at_1fps_measured": cameras
        if len(ok) == cameras and not recorder_lost
        else len(ok),
        "cameras_run": cameras,
        "window_s": round(window, 1),
        "analysed_fps_min": round(min(rates.values()), 2),
        "analysed_fps_median": round(statistics.median(rates.values()), 2),
        "frames_dropped": sum(dropped.values()),
        "recorded_fps_per_camera": round(
            (after["recorded"] - before["recorded"]) / window / cameras, 1
        ),
        "recorder_dropped": recorder_lost,
        "agent_cpu_cores": round(cpu, 2),
        "errors": after["errors"],
        "load_1min_at_end": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    """Run once, print the figures and add them to bench/results/detect.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=40.0, help="measured window")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = run(args.cameras, args.seconds)
    print(json.dumps(result, indent=2))
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    runs = data.get("capacity_runs", {})
    runs[str(args.cameras)] = result
    data["capacity_runs"] = runs
    data["cameras_at_1fps_measured"] = max(r["cameras_at_1fps_measured"] for r in runs.values())
    data["cameras_at_1fps_note"] = (
        "measured: N cameras at once on the RTSP testbed (recording 1080p main, detecting on "
        "the sub stream at 1 fps, people in every frame) on a shared 2-core machine; the "
        "largest N whose every camera kept 1 fps; runs in capacity_runs"
    )
    data.pop("capacity_run", None)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
