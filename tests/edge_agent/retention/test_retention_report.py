"""`edge-agent storage`: the real CLI run in a subprocess on a prepared site."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from retention_site import DAY, Site, SiteFactory

from edge_agent.retention import events as ev
from edge_agent.retention.cleaner import RetentionCleaner


def edge_agent(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "edge-agent"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "edge_agent"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, check=False
    )


def storage_json(site: Site) -> dict[str, Any]:
    proc = edge_agent("storage", "-c", str(site.config_path), "--json")
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_storage_report_json_per_camera(make_site: SiteFactory) -> None:
    site = make_site({"cam-a": 90, "cam-b": 30})
    now = time.time()
    site.add_run("cam-a", now - 2 * DAY, 3)
    site.add_run("cam-a", now - DAY, 3)
    gap = site.index.open_gap("cam-a", now - 2 * DAY + 180, "camera offline")
    site.index.close_gap(gap, now - DAY)
    site.index.open_gap("cam-a", now - 300, "camera offline")
    site.index.add_hold("cam-a", now - DAY, now - DAY + 30, "alert", ref="evt-7")
    released = site.index.add_hold("cam-b", now - 600, now, "alert", ref="evt-8")
    site.index.release_hold(released)
    site.add_run("cam-b", now - 600, 2)
    site.add("cam-old", now - 5 * DAY)  # a camera removed from the config since

    report = storage_json(site)

    assert report["site_id"] == "plant-1" and report["storage_path"] == str(site.storage)
    cams = {c["camera"]: c for c in report["cameras"]}
    assert list(cams) == ["cam-a", "cam-b", "cam-old"]
    a = cams["cam-a"]
    assert (a["segments"], a["bytes"], a["held_bytes"]) == (6, 6 * site.size, site.size)
    assert a["retention_days"] == 90 and a["configured"]
    assert a["days_held"] == pytest.approx(1 + 180 / DAY, abs=1e-3)
    assert ts(a["oldest"]) == pytest.approx(now - 2 * DAY, abs=1e-3)
    assert ts(a["newest"]) == pytest.approx(now - DAY + 180, abs=1e-3)
    assert a["bytes_per_s"] == pytest.approx(site.size / 60, abs=1e-3)
    assert a["gaps"]["count"] == 2
    assert a["gaps"]["seconds"] == pytest.approx(DAY - 180 + 300, abs=60)
    assert ts(a["gaps"]["open_since"]) == pytest.approx(now - 300, abs=1e-3)
    assert [(h["reason"], h["ref"]) for h in a["holds"]] == [("alert", "evt-7")]
    b = cams["cam-b"]
    assert (b["segments"], b["retention_days"], b["holds"]) == (2, 30, [])
    assert b["gaps"] == {"count": 0, "seconds": 0.0, "open_since": None, "open_seconds": None}
    old = cams["cam-old"]
    assert not old["configured"] and old["retention_days"] == 90 and old["segments"] == 1

    totals = report["totals"]
    assert totals == {
        "bytes": 9 * site.size,
        "segments": 9,
        "held_bytes": site.size,
        "capacity_bytes": report["disk"]["free_bytes"]
        + 8 * site.size
        - report["disk"]["required_free_bytes"],
        "active_holds": 1,
    }
    # Two cameras at ~85 bytes/s hardly dent any real disk.
    rate_per_day = (a["bytes_per_s"] + b["bytes_per_s"]) * DAY
    assert report["days_forecast"] == pytest.approx(
        90
        + (totals["capacity_bytes"] - rate_per_day * 30 - a["bytes_per_s"] * DAY * 60)
        / rate_per_day,
        rel=1e-3,
    )
    assert not report["at_risk"] and a["days_forecast"] == report["days_forecast"]
    assert report["recent_events"] == []


def test_storage_report_flags_risk_and_lists_retention_events(make_site: SiteFactory) -> None:
    site = make_site({"cam-a": 3650}, risk_margin_days=90)
    if shutil.disk_usage(site.storage).free > 3 * 10**12:
        pytest.skip("this disk is big enough to hold ten years of the test stream")
    now = time.time()
    site.add_run("cam-a", now - 100, 10, every=1.0)  # real one-second files: ~5 kB/s
    cleaner = RetentionCleaner(site.config, site.index)  # the real disk probe
    try:
        result = cleaner.run_once(now)
    finally:
        cleaner.stop()
    assert result.forecast is not None and result.forecast.at_risk
    assert result.expired == result.evicted == ()

    report = storage_json(site)
    assert report["at_risk"] and report["at_risk_cameras"] == ["cam-a"]
    assert report["days_forecast"] < 3650
    assert [e["kind"] for e in report["recent_events"]] == [ev.RETENTION_AT_RISK]

    table = edge_agent("storage", "-c", str(site.config_path))
    assert table.returncode == 0, table.stderr
    assert "RETENTION AT RISK" in table.stdout and "cam-a" in table.stdout


def test_storage_table_and_missing_index(make_site: SiteFactory, tmp_path: Path) -> None:
    site = make_site({"cam-a": 90})
    site.add("cam-a", time.time() - 120)
    site.index.close()  # the agent is not running
    table = edge_agent("storage", "-c", str(site.config_path))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[2].startswith("cam-a") and "retention OK" in table.stdout
    # Reading left no -wal/-shm behind that the agent's user might not be able to open.
    assert sorted(p.name for p in site.config.state_dir.iterdir()) == ["index.db"]

    (site.config.state_dir / "index.db").rename(tmp_path / "moved.db")
    proc = edge_agent("storage", "-c", str(site.config_path), "--json")
    assert proc.returncode == 1 and "no segment index" in proc.stderr


def test_offline_cameras_say_why_and_a_never_recorded_one_is_a_gap(
    make_site: SiteFactory,
) -> None:
    site = make_site({"cam-a": 90, "cam-b": 90, "cam-c": 90})
    now = time.time()
    site.add_run("cam-a", now - 600, 2)
    site.index.record_state("cam-a", "online", "recording", ts=now - 600)
    site.index.record_state("cam-a", "offline", "connection refused", ts=now - 480)
    site.index.open_gap("cam-a", now - 480, "connection refused")
    site.index.record_state("cam-b", "offline", "unauthorized (check the camera credential)",
                            ts=now - 900)  # fmt: skip
    site.index.close()

    cams = {c["camera"]: c for c in storage_json(site)["cameras"]}
    assert cams["cam-a"]["state"]["reason"] == "connection refused"
    assert cams["cam-a"]["gaps"]["count"] == 1
    b = cams["cam-b"]  # never recorded, and no gap row: all of its time is one gap
    assert b["segments"] == 0 and b["gaps"]["count"] == 1
    assert b["gaps"]["seconds"] == pytest.approx(900, abs=30)
    assert b["state"] == {"state": "offline", "since": b["state"]["since"],
                          "reason": "unauthorized (check the camera credential)"}  # fmt: skip
    c = cams["cam-c"]  # configured but the agent never ran it
    assert c["state"]["reason"] == "never started by the agent" and c["gaps"]["count"] == 1

    table = edge_agent("storage", "-c", str(site.config_path)).stdout
    line_a = next(line for line in table.splitlines() if line.startswith("cam-a"))
    line_b = next(line for line in table.splitlines() if line.startswith("cam-b"))
    assert line_a.endswith(": connection refused")
    assert line_b.endswith(": unauthorized (check the camera credential)")
