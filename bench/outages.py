"""Outage benchmark: what kill -9, camera reboots and a full disk really cost, to the frame.

The footage carries a burned-in frame counter, so the true loss of every outage is read from
the recorded files themselves and compared with the index (segment rows and gap rows):

- `--kills N` times `edge-agent run` is killed with SIGKILL at a random point and restarted;
  each kill's loss is split into the fragment under way, the agent's downtime and the
  wait for a keyframe after the reconnect, from the index and the agent's log
  (`kill_figures` says what each key means);
- `--restarts M` times the RTSP server (the camera) goes away for 5 s and comes back, with
  the default back-off settings; the time from its return to the first recorded frame is
  the reconnect time;
- the agent records two cameras on a 48 MB tmpfs (a private mount namespace, `unshare`)
  while free space is sampled every 0.1 s, then another program fills the disk.

Merges its keys into bench/results/integrity.json (other keys are kept):

    .venv/bin/python bench/outages.py --only kills            # 20 kills, about 4 minutes
    .venv/bin/python bench/outages.py --only restarts --only disk --restarts 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.recording_common import load, machine, main_clip  # noqa: E402
from edge_agent.config import EdgeConfig  # noqa: E402
from edge_agent.credentials import CredentialStore  # noqa: E402
from edge_agent.recording.index import SegmentIndex  # noqa: E402
from edge_agent.recording.recorder import CameraRecorder  # noqa: E402
from testbed.outage_check import Hole, KillLoss, holes, kept_live, kill_losses  # noqa: E402
from testbed.rtsp import RtspServer  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "integrity.json"
OUTAGE_S = 5.0  # how long the camera is away on each restart
HEALTHY_S = 12.0  # recording between camera restarts


def config_for(root: Path, cameras: dict[str, str], **storage: Any) -> EdgeConfig:
    """Record `cameras` into root/storage with the default recorder settings."""
    return EdgeConfig.model_validate(
        {
            "site_id": "bench",
            "storage": {"path": str(root / "storage"), "segment_seconds": 5, **storage},
            "detection": {"enabled": False},
            "cameras": [
                {"id": cam, "name": cam, "station": "quarantine", "main_url": url}
                for cam, url in cameras.items()
            ],
        }
    )


def write_config(config: EdgeConfig, path: Path) -> Path:
    """The config as the YAML file `edge-agent run` reads."""
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    return path


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until `predicate` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def online_since(index: SegmentIndex, since: float) -> bool:
    """Whether cam1 went online (a first frame reached a file) after `since`."""
    return any(r["state"] == "online" and r["ts"] >= since for r in index.states("cam1"))


def run_kills(
    server: RtspServer, root: Path, kills: int, loop: int
) -> tuple[list[Hole], list[KillLoss]]:
    """Kill -9 the agent `kills` times; the holes the recording has afterwards, and where
    each kill's loss went (from the index and the agent's log)."""
    config = config_for(root, {"cam1": server.url("cam1")})
    config_file = write_config(config, root / "edge.yaml")
    index = SegmentIndex(config.state_dir / "index.db")
    rng = random.Random(6)
    log = (root / "agent.log").open("ab")
    killed_at: list[float] = []
    try:
        for round_ in range(kills + 1):
            agent = subprocess.Popen(
                [sys.executable, "-m", "edge_agent", "run", "-c", str(config_file)],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
            )  # fmt: skip
            wait_for(partial(online_since, index, time.time()), 90, "video after a restart")
            if round_ == kills:
                time.sleep(8.0)  # a whole segment after the last restart
                agent.send_signal(signal.SIGTERM)
                agent.wait(60)
                break
            time.sleep(rng.uniform(0.5, 4.5))
            killed_at.append(time.time())
            agent.send_signal(signal.SIGKILL)
            agent.wait(10)
            print(f"kill {round_ + 1}/{kills}", flush=True)
    finally:
        log.close()
        index.close()
    index_db = config.state_dir / "index.db"
    found = holes(index_db, config.storage.path, "cam1", loop)
    text = (root / "agent.log").read_text(errors="replace")
    return found, kill_losses(index_db, found, killed_at, text, "cam1")


def run_restarts(
    server: RtspServer, root: Path, restarts: int, loop: int
) -> tuple[list[float], list[Hole]]:
    """Take the camera away `restarts` times; reconnect seconds and the holes."""
    config = config_for(root, {"cam1": server.url("cam1")})
    index = SegmentIndex(config.state_dir / "index.db")
    recorder = CameraRecorder(config.cameras[0], config, index, CredentialStore(environ={}))
    back_after = []
    recorder.start()
    try:
        wait_for(lambda: recorder.status().state == "online", 30, "online")
        for i in range(restarts):
            time.sleep(HEALTHY_S)
            server.stop()
            wait_for(lambda: recorder.status().state == "offline", 30, "offline")
            time.sleep(OUTAGE_S)
            server.start()
            back = time.time()
            wait_for(lambda: recorder.status().state == "online", 120, "online again")
            back_after.append(recorder.status().since - back)
            print(f"restart {i + 1}/{restarts}: back after {back_after[-1]:.2f} s", flush=True)
        time.sleep(6)
    finally:
        recorder.stop()
        index.close()
    found = holes(config.state_dir / "index.db", config.storage.path, "cam1", loop)
    return back_after, found


def run_disk_full(server: RtspServer, root: Path) -> dict[str, Any]:
    """Two cameras on a 48 MB tmpfs with an 8 MB watermark, then the disk filled."""
    # 2 MB kept for the index and outbox (the 128 MiB default is capped at a tenth of a disk).
    cams = {"cam1": server.url("cam1"), "cam2": server.url("cam2")}
    storage = {
        "hard_min_free_bytes": 8_000_000,
        "hard_min_free_percent": 0,
        "cleanup_interval_s": 10,
    }
    config_file = write_config(config_for(root, cams, **storage), root / "edge.yaml")
    run = subprocess.run(
        ["unshare", "-Urm", sys.executable, "-m", "testbed.disk_full", str(config_file),
         str(48 << 20), "60", "20"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"disk-full run failed: {run.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the outage kinds asked for and merge their figures into integrity.json."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="kill -9 rounds (default 20)")
    parser.add_argument("--restarts", type=int, default=10, help="camera restarts (default 10)")
    parser.add_argument(
        "--only",
        choices=["kills", "restarts", "disk"],
        action="append",
        help="run only these parts (repeatable); their keys are merged into the results",
    )
    args = parser.parse_args(argv)
    parts = set(args.only or ["kills", "restarts", "disk"])
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    clip = main_clip()
    info = machine()  # the load before the runs
    loop = clip.frames
    paths = {"cam1": clip.path, "cam2": clip.path}
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-outages-") as tmp:
        root = Path(tmp)
        with RtspServer(paths) as server, kept_live(server.url("cam1")):
            if "kills" in parts:
                figures["kills"] = args.kills
                found, explained = run_kills(server, root / "kills", args.kills, loop)
                figures |= kill_figures(found, explained, clip.gop_s)
                figures["kill_python_startup"] = startup_costs()
            if "disk" in parts:
                figures |= disk_figures(run_disk_full(server, root / "disk"))
        if "restarts" in parts:
            with RtspServer({"cam1": clip.path}) as camera:
                back, found = run_restarts(camera, root / "restarts", args.restarts, loop)
            figures |= restart_figures(back, found)
    for key, value in figures.items():
        print(f"{key}: {value}")
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing.update(figures)
    # Each part names the machine and load it ran on: a file's figures can come from
    # runs on different days and boxes (the tamper figures from bench/integrity.py too).
    ran_on = {**info, "loadavg_after": load()}
    for part in sorted(parts):
        existing[f"machine_{part}"] = ran_on
    existing["outages_note"] = (
        "true loss read from the burned-in frame counter; reconnect_s: from the camera's "
        "return to the first frame in a file (includes the wait for a keyframe, 2 s GOP); "
        "shared 2-core machine, other work ran meanwhile; kill_python_startup: a fresh "
        "interpreter, and one importing what runs before the 'starting' log line and before "
        "the recorders connect, on this machine at the end of the run (Python start-up, not "
        "footage the recorder loses once it runs: that is kill_loss_after_restart_s and "
        "kill_tail_s); kill_loss_after_restart_s = kill_handshake_s (connect to the stream "
        "playing: TCP connect, DESCRIBE, SETUP, PLAY, first packet) + kill_keyframe_wait_s "
        "(stream seconds from the first packet to the first keyframe, from the agent's log, "
        "under one GOP); the stream probing in av.open overlaps the keyframe wait and its "
        "packets are recorded"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


STARTUP_ROUNDS = 5
STARTUP_STEPS = {
    # what a restarted agent runs before its "starting" log line
    "python_bare_s": "pass",
    "python_cli_s": "import edge_agent.cli",
    # and before its recorders connect (PyAV and FFmpeg's libraries, the index, the repair)
    "python_cli_recorder_s": "import edge_agent.cli, edge_agent.app, "
    "edge_agent.recording.recorder, edge_agent.recording.repair",
}


def startup_costs() -> dict[str, Any]:
    """Wall seconds a fresh interpreter takes to start and import what the agent needs
    before recording, on this machine now (median of STARTUP_ROUNDS): the part of a kill's
    downtime that is Python start-up, not the recorder."""
    figures: dict[str, Any] = {}
    for key, code in STARTUP_STEPS.items():
        times = []
        for _ in range(STARTUP_ROUNDS):
            began = time.monotonic()
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
            times.append(time.monotonic() - began)
        figures[key] = round(statistics.median(times), 3)
    figures["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return figures


def kill_figures(found: list[Hole], parts: list[KillLoss], gop_s: float) -> dict[str, Any]:
    """The kill -9 keys of integrity.json.

    `kill_loss_s_*` is the whole loss: every frame missing between the last frame saved
    before the kill and the first one after the restart (burned-in counter). It splits
    into three parts (testbed.outage_check.KillLoss), each from the index and the log:
    - tail: what the killed agent had received but not written (the fragment under way,
      at most segment_writer.FRAGMENT_US plus a frame);
    - down: the agent not running, from the kill to the restarted recorder's connect
      (process start, imports, config, index, start-up repair); it grows with the
      machine's load;
    - after: from the connect to the first frame in a file (the RTSP handshake and the
      wait for the camera's next keyframe, at most one GOP). It splits into
      `kill_keyframe_wait_s` (stream seconds from the first packet after PLAY to the first
      keyframe, from the agent's log) and `kill_handshake_s`, the rest (connect, DESCRIBE,
      SETUP, PLAY, the first packet's arrival). The stream probing that ends av.open
      overlaps the keyframe wait and costs no footage: the packets it reads are recorded.
    "Loss <= one GOP after restart" means `kill_loss_after_restart_s_max` <= the GOP: once
    the agent runs again, at most one GOP is missed. `kill_loss_beyond_downtime_s_*` is
    the whole loss less the downtime (tail + after): what a kill costs beyond the
    seconds the agent was not running.
    """
    losses = [h.true_s for h in found]

    def spread(values: list[float], key: str) -> dict[str, float | None]:
        return {
            f"{key}_median": round(statistics.median(values), 3) if values else None,
            f"{key}_max": round(max(values), 3) if values else None,
        }

    return {
        "kill_holes_found": len(found),
        "kill_loss_s_median": round(statistics.median(losses), 3) if losses else None,
        "kill_loss_s_max": round(max(losses), 3) if losses else None,
        "gop_s": gop_s,
        **spread([p.after_s for p in parts], "kill_loss_after_restart_s"),
        **spread([p.handshake_s for p in parts], "kill_handshake_s"),
        **spread([p.keyframe_wait_s for p in parts], "kill_keyframe_wait_s"),
        **spread([p.beyond_downtime_s for p in parts], "kill_loss_beyond_downtime_s"),
        **spread([p.tail_s for p in parts], "kill_tail_s"),
        **spread([p.down_s for p in parts], "kill_downtime_s"),
        **spread([p.imports_s for p in parts], "kill_process_start_s"),
        "kills_explained": len(parts),
        "kills_without_gap_row": sum(1 for h in found if not h.gap_rows),
        "kill_index_error_s_max": round(max((abs(h.error_s) for h in found), default=0), 3),
        "kill_holes": [hole_entry(h) for h in found],
        "kill_parts": [
            {
                "true_s": round(p.true_s, 3),
                "tail_s": round(p.tail_s, 3),
                "down_s": round(p.down_s, 3),
                "process_start_s": round(p.imports_s, 3),
                "after_s": round(p.after_s, 3),
                "handshake_s": round(p.handshake_s, 3),
                "keyframe_wait_s": round(p.keyframe_wait_s, 3),
            }
            for p in parts
        ],
    }


def hole_entry(hole: Hole) -> dict[str, Any]:
    """One hole for the results: the index's length, the true length, the covering rows."""
    return {
        "index_s": round(hole.index_s, 3),
        "true_s": round(hole.true_s, 3),
        "gap_rows": list(hole.gap_rows),
    }


def restart_figures(back_after: list[float], found: list[Hole]) -> dict[str, Any]:
    """The camera-restart keys of integrity.json.

    A restarted server plays its file from the start, so the counter cannot tell the true
    loss here: the holes are reported by their index length and gap rows only.
    """
    return {
        "camera_restarts": len(back_after),
        "reconnect_s_max": round(max(back_after), 3) if back_after else None,
        "reconnect_s_median": round(statistics.median(back_after), 3) if back_after else None,
        "restarts_without_gap_row": sum(1 for h in found if not h.gap_rows),
        "restart_holes": [
            {"index_s": round(h.index_s, 3), "gap_rows": list(h.gap_rows)} for h in found
        ],
    }


def disk_figures(disk: dict[str, Any]) -> dict[str, Any]:
    """The full-disk keys of integrity.json."""
    keys = (
        "watermark_bytes",
        "min_free_bytes",
        "enospc_fill_bytes",
        "free_after_full_bytes",
        "verify_exit",
        "index",
    )
    return {
        "min_free_bytes_vs_watermark": disk["min_free_bytes"] - disk["watermark_bytes"],
        "disk_full": {k: disk[k] for k in keys},
    }


if __name__ == "__main__":
    raise SystemExit(main())
