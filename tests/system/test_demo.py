"""The README's demo brings the whole system up: recordings, an alert at central, pages."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from testbed.footage import Footage

REPO = Path(__file__).resolve().parents[2]


def _api(base: str, path: str, token: str | None = None, body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _items_seen_by(
    base: str, accounts: list[dict[str, str]], username: str, path: str
) -> list[dict[str, object]]:
    password = next(a["password"] for a in accounts if a["username"] == username)
    login = _api(base, "/api/v1/auth/login",
                 body={"username": username, "password": password, "kind": "bearer"})  # fmt: skip
    assert isinstance(login, dict)
    page = _api(base, path, token=login["token"])
    assert isinstance(page, dict)
    return list(page["items"])


def _alerts_seen_by(
    base: str, accounts: list[dict[str, str]], username: str
) -> list[dict[str, object]]:
    return _items_seen_by(base, accounts, username, "/api/v1/alerts")


def _central_events(db: Path) -> list[tuple[str, str, str]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("select kind, phase, camera from events").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


@pytest.mark.slow
def test_demo_records_alerts_and_serves_pages(tmp_path: Path, footage: Footage) -> None:
    root = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "testbed.demo", "--root", str(root), "--port", "0",
         "--duration", "120"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    banner = ""
    try:
        deadline = time.monotonic() + 60
        while "Stop:" not in banner and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            banner += line
        url = re.search(r"Open:\s+(http://127\.0\.0\.1:\d+/)", banner)
        assert url, banner
        assert "county_inspector" in banner and str(root / "recordings") in banner
        with urllib.request.urlopen(url.group(1), timeout=10) as page:
            assert page.status == 200
            assert "<html" in page.read().decode().lower()
        # The school canteen's public kitchen page (no login) and its QR code to print.
        public = re.search(r"Public page:\s+(http://127\.0\.0\.1:\d+/p/[\w-]+)", banner)
        assert public, banner
        with urllib.request.urlopen(public.group(1), timeout=10) as page:
            assert "中卫市第一小学食堂" in page.read().decode()
        view = _api(public.group(1).replace("/p/", "/api/v1/public/"), "")
        assert isinstance(view, dict)
        refs = [c["ref"] for c in view["cameras"]]
        assert refs == ["demo-canteen-01/kitchen-1", "demo-canteen-01/washing-1"]
        assert view["inspection"]["rating"] == "excellent"
        assert (root / "public-kitchen-qr.svg").read_bytes().startswith(b"<?xml")

        # Other events may come first (retention_at_risk on a nearly full disk): wait for this one.
        alert = ("after_hours_activity", "start", "disposal-1")
        deadline = time.monotonic() + 100
        events = _central_events(root / "central" / "central.db")
        while time.monotonic() < deadline and alert not in events:
            time.sleep(1)
            events = _central_events(root / "central" / "central.db")
        assert alert in events, events
        for camera in ("disposal-1", "quarantine-1"):
            assert list((root / "recordings" / camera).glob("*/*/*.mp4")), camera
        # The alert is in the inbox of the county-A inspector, not in county B's.
        accounts = json.loads((root / "accounts.json").read_text())["users"]
        base = url.group(1).rstrip("/")
        deadline = time.monotonic() + 30  # the alert feed follows ingest asynchronously
        seen_a = _alerts_seen_by(base, accounts, "inspector-a")
        while not seen_a and time.monotonic() < deadline:
            time.sleep(1)
            seen_a = _alerts_seen_by(base, accounts, "inspector-a")
        assert any(a["kind"] == "after_hours_activity" for a in seen_a), seen_a
        assert _alerts_seen_by(base, accounts, "inspector-b") == []
        # Cameras are listed with the name and station of the edge config (from their
        # state messages), also the one that never raised an event.
        cameras = _items_seen_by(base, accounts, "inspector-a", "/api/v1/cameras")
        listed = {(c["camera_id"], c["name"], c["station"]) for c in cameras}
        assert ("quarantine-1", "Synchronous quarantine inspection", "quarantine") in listed
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, banner + out
    report = subprocess.run(
        [sys.executable, "-m", "edge_agent", "storage", "-c", str(root / "edge.yaml"), "--json"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    cameras = {c["camera"] for c in json.loads(report.stdout)["cameras"]}
    assert cameras == {"disposal-1", "quarantine-1"}
