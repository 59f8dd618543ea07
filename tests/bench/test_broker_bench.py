"""bench/broker.py at a tiny size against the real Mosquitto: its figures are all there and
no event is lost, through a broker restart and the sites' reconnect storm."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "sites", "broker_cpu_percent_of_core", "broker_rss_mb", "connect_all_s",
    "reconnect_storm_s", "latency_p50_ms", "latency_p95_ms", "latency_max_ms", "events_lost",
    "machine", "load_avg_at_start", "load_avg_at_end", "steps",
}  # fmt: skip


def test_broker_bench_tiny_fleet_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "broker.json"
    subprocess.run(
        [sys.executable, "bench/broker.py", "--sites", "20", "--procs", "1", "--warmup-s", "2",
         "--window-s", "4", "--heartbeat-s", "1", "--events-per-hour", "3600",
         "--output", str(out)],
        cwd=REPO, check=True, timeout=240,
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert KEYS <= result.keys()
    assert result["sites"] == 20
    # every site came back after the restart and central heard a fresh `online` from each
    assert result["reconnect_storm_sites_back"] == 20
    assert result["reconnect_storm_s"] is not None
    assert result["site_connects"] == 40
    # about one event per site and second for the whole run: none lost (QoS 1)
    assert result["events_sent"] > 100
    assert result["events_lost"] == 0
    # heartbeats in the window (QoS 0) all arrived, each with a latency
    assert result["heartbeats_in_window"] >= 20 * 3
    assert result["heartbeats_lost"] == 0
    assert 0 < result["latency_p50_ms"] <= result["latency_p95_ms"] <= result["latency_max_ms"]
    assert result["broker_rss_mb"] > 0
    assert result["broker_open_files_limit"] >= 20
    assert result["machine"]["cores"] >= 1
