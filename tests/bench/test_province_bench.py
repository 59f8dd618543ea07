"""bench/province.py at a tiny size: real PostgreSQL, Mosquitto and three central-server
processes, one killed with SIGKILL mid-run; no event lost or stored twice, the killed
node's leases taken over, and the other keys of the results file kept."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "sites", "nodes", "database", "machine", "node_kill_lost_events", "events_published",
    "duplicates_stored", "alerts_missing", "lease_takeover_s", "ingest_lag_p95_s_before_kill",
    "ingest_lag_p95_s_after_kill", "cpu_percent_of_core_before_kill", "load_avg_at_start",
    "alerts_in_db", "health_rows",
}  # fmt: skip


def test_province_bench_tiny_cluster_loses_no_event(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    out.write_text(json.dumps({"sites": 500, "viewers_one_core_measured": 7}))
    subprocess.run(
        [sys.executable, "bench/province.py", "--sites", "20", "--procs", "1",
         "--heartbeat-s", "2", "--alerts-per-hour", "3600", "--warmup-s", "2",
         "--before-s", "5", "--after-s", "25", "--drain-s", "30", "--output", str(out)],
        cwd=REPO, check=True, timeout=400,
    )  # fmt: skip
    data = json.loads(out.read_text())
    assert data["sites"] == 500 and data["viewers_one_core_measured"] == 7
    prov = data["province"]
    assert KEYS <= prov.keys()
    assert (prov["sites"], prov["nodes"], prov["database"]) == (20, 3, "postgresql")
    assert prov["events_published"] > 50
    assert prov["node_kill_lost_events"] == 0
    assert prov["duplicates_stored"] == 0
    # every singleton the killed node led and its broker sessions went to a survivor
    assert prov["lease_takeover_s"] is not None
    assert set(prov["lease_takeover"]) == set(prov["killed_node_leases"])
    assert prov["killed_node"] not in {t["by"] for t in prov["lease_takeover"].values()}
