"""Footage integrity: tamper detection, false alarms, anchoring and audit costs.

Runs the integrity system tests (real Mosquitto, real segment files, the real agent killed
with SIGKILL while recording the RTSP testbed) and measures what anchoring and auditing
cost; prints the figures and merges them into bench/results/integrity.json (other keys in
that file, e.g. the recorder's outage figures, are kept).

    .venv/bin/python bench/integrity.py [--kills 20]

- tamper_cases / detected: file deleted, truncated, rewritten, index rows deleted, index
  rebuilt from scratch; each must be found by the next audit or anchor check.
- false_alarms: findings about untouched segments, a box offline and back, and `--kills`
  SIGKILLs of the recording agent.
- anchor_overhead_bytes_per_camera_day: MQTT bytes (payload, topic, header) the anchors of
  one camera take per day of 60 s segments, one message a minute (a site with one camera:
  the worst case; `..._16_cameras` shares each message between 16 cameras).
- audit_seconds_per_90_days: edge time the scheduled audits take per camera over 90 days
  (every 6 h, 3 segments of 60 s at 4 Mbit/s hashed from disk); `full_rehash_...` is what
  proving every segment of 90 days would take instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edge_agent.integrity.anchor import AnchorSender
from edge_agent.mqtt.outbox import Outbox
from edge_agent.recording.index import SegmentIndex, SegmentInfo
from fsv_common.digest import file_sha256

REPO = Path(__file__).parents[1]
RESULT = REPO / "bench" / "results" / "integrity.json"
SEGMENT_S = 60.0
SEGMENT_BYTES = 30_000_000  # 60 s at 4 Mbit/s
MQTT_OVERHEAD = 2 + 2 + 2  # fixed header, topic length, packet id (remaining length ~3)


def anchor_bytes_per_day(cameras: int, minutes: int = 120) -> float:
    """MQTT bytes per camera for a day of segments, one anchor round a minute.

    Every minute costs the same (one link per camera), so `minutes` of them are measured
    and scaled to the day.
    """
    with tempfile.TemporaryDirectory() as tmp:
        index = SegmentIndex(Path(tmp) / "index.db")
        outbox = Outbox(Path(tmp) / "outbox.db", "site-0001")
        sender = AnchorSender(index, outbox, {})
        total = 0
        t0 = 1_780_000_000.0
        for minute in range(minutes):
            start = t0 + minute * SEGMENT_S
            for c in range(cameras):
                hh, mm = divmod(minute, 60)
                info = SegmentInfo(
                    f"cam-{c:02d}", f"cam-{c:02d}/2026-05-28/{hh:02d}/{mm:02d}.00.mp4", start,
                    start + SEGMENT_S, SEGMENT_BYTES, "h264", 1920, 1080, "aac",
                    f"{minute * 100 + c:064x}",
                )  # fmt: skip
                index.add_segment(info)
            sender.run_once()
            for m in outbox.pending(limit=10):
                total += len(m.payload) + len(m.topic) + MQTT_OVERHEAD + 3
            outbox.ack(m.id for m in outbox.pending(limit=10))
        outbox.close()
        index.close()
    return total / cameras * (1440 / minutes)


def hash_seconds_per_segment(repeats: int = 5) -> float:
    """Median seconds to hash one 60 s segment file from disk (page cache dropped by size)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "segment.mp4"
        path.write_bytes(os.urandom(SEGMENT_BYTES))
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            file_sha256(path)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_system_tests(kills: int, report: Path) -> int:
    """The integrity system tests, writing their figures into `report`."""
    env = {**os.environ, "FSV_INTEGRITY_REPORT": str(report), "FSV_KILL_ROUNDS": str(kills)}
    tests = ["tests/central/test_integrity_system.py", "tests/central/test_integrity_kill.py"]
    return subprocess.call(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=REPO, env=env,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of the recording agent")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "figures.json"
        status = run_system_tests(args.kills, report)
        tests: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    if status != 0:
        print(f"the integrity system tests failed (exit {status}); figures not written")
        return 1
    figures["tamper_cases"] = tests["tamper_cases"]
    figures["detected"] = tests["detected"]
    figures["detected_by_case"] = tests["detected_by_case"]
    figures["false_alarms"] = (
        tests["false_alarms"] + tests["offline_false_alarms"] + tests["kill_false_alarms"]
    )
    figures["kill_rounds"] = tests["kill_rounds"]
    figures["anchor_overhead_bytes_per_camera_day"] = round(anchor_bytes_per_day(1))
    figures["anchor_overhead_bytes_per_camera_day_16_cameras"] = round(anchor_bytes_per_day(16))
    per_segment = hash_seconds_per_segment()
    audits = 90 * (86400 / (6 * 3600)) * 3
    figures["hash_seconds_per_60s_segment"] = round(per_segment, 4)
    figures["audit_seconds_per_90_days"] = round(audits * per_segment, 2)
    figures["full_rehash_seconds_per_camera_90_days"] = round(90 * 1440 * per_segment)
    machine = f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu, {platform.system()}"
    figures["machine"] = machine
    for key, value in figures.items():
        print(f"{key}: {value}")
    data = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    data.update(figures)  # merge: keep the keys other benchmarks wrote
    RESULT.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"written {RESULT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
