"""Run `edge-agent run` on a small tmpfs until the disk fills, and report what free space did.

Run it inside a private mount namespace, where an unprivileged user may mount a tmpfs:

    unshare -Urm python -m testbed.disk_full CONFIG.yaml SIZE_BYTES STEADY_S FULL_S

The storage folder of CONFIG (index and state included) becomes a tmpfs of SIZE_BYTES.
For STEADY_S seconds the agent records alone while free space is sampled every 0.1 s; then
another program fills the disk to ENOSPC and the agent must make room itself for FULL_S
seconds; the junk is removed and the agent stopped. One JSON object is printed: the least
free space seen while recording alone, against the watermark, and `edge-agent verify`.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_S = 0.1


def main(argv: list[str]) -> int:
    """Mount, record, fill, measure; print the JSON result."""
    config_file, size, steady_s, full_s = (
        Path(argv[0]),
        int(argv[1]),
        float(argv[2]),
        float(argv[3]),
    )
    config = yaml.safe_load(config_file.read_text())
    storage = Path(config["storage"]["path"])
    storage.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(storage)], check=True
    )
    watermark = int(config["storage"]["hard_min_free_bytes"])
    log = open(config_file.with_suffix(".log"), "ab")  # noqa: SIM115 - closed below
    agent = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "run", "-c", str(config_file)],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    result: dict[str, Any] = {"watermark_bytes": watermark}
    try:
        result["min_free_bytes"] = _sample_free(storage, steady_s)
        result["enospc_fill_bytes"] = _fill(storage / "junk.bin")
        time.sleep(full_s)
        result["free_after_full_bytes"] = shutil.disk_usage(storage).free
        (storage / "junk.bin").unlink()
        time.sleep(5.0)  # a segment or so more after the junk went
    finally:
        agent.send_signal(signal.SIGTERM)
        result["agent_exit"] = agent.wait(60)
        log.close()
    verify = subprocess.run(
        [sys.executable, "-m", "edge_agent", "verify", "-c", str(config_file)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    result["verify_exit"] = verify.returncode
    result["verify"] = verify.stdout.splitlines()
    result["index"] = _index_facts(storage / ".agent" / "index.db")
    print(json.dumps(result))
    return 0


def _sample_free(storage: Path, seconds: float) -> int:
    least = shutil.disk_usage(storage).free
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        least = min(least, shutil.disk_usage(storage).free)
        time.sleep(SAMPLE_S)
    return least


def _fill(path: Path) -> int:
    """Write zeros until the disk refuses more (another program filling the disk)."""
    written = 0
    block = b"\0" * (1 << 20)
    with path.open("wb", buffering=0) as f:
        while True:
            try:
                f.write(block)
            except OSError:
                break
            written += len(block)
    return written


def _index_facts(db_path: Path) -> dict[str, Any]:
    import sqlite3

    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        segments = db.execute("select count(*), min(duration) from segments").fetchone()
        gaps = db.execute("select reason from gaps").fetchall()
        removed = db.execute("select count(*) from removed_segments").fetchone()[0]
    return {
        "segments": segments[0],
        "min_duration": segments[1],
        "gap_reasons": sorted({r[0] for r in gaps}),
        "evicted": removed,
    }


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main(sys.argv[1:]))
