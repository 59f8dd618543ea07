"""Under systemd the agent says READY, pings the watchdog while healthy and says STOPPING."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from testbed.rtsp import RtspServer

REPO = Path(__file__).resolve().parents[2]


def _receive(sock: socket.socket, wanted: str, timeout: float) -> list[str]:
    """Datagrams until one contains `wanted` (AssertionError with all seen if none)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            seen.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if wanted in seen[-1]:
            return seen
    raise AssertionError(f"no {wanted!r} within {timeout} s; got {seen}")


def test_ready_watchdog_and_stopping(tmp_path: Path, rtsp_server: RtspServer) -> None:
    config = {
        "site_id": "site-a",
        "storage": {"path": str(tmp_path / "rec"), "segment_seconds": 10},
        "log_level": "WARNING",
        "cameras": [{"id": "cam1", "name": "Entry", "station": "entry_inspection",
                     "main_url": rtsp_server.url("cam1")}],
    }  # fmt: skip
    (tmp_path / "edge.yaml").write_text(yaml.safe_dump(config))
    sock_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "2000000"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", "-c", str(tmp_path / "edge.yaml")],
            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            ready = _receive(sock, "READY=1", 30)
            assert "STATUS=recording 1 cameras" in ready[-1]
            pings = [m for m in _receive(sock, "WATCHDOG=1", 5) if "WATCHDOG=1" in m]
            pings += [m for m in _receive(sock, "WATCHDOG=1", 5) if "WATCHDOG=1" in m]
            assert len(pings) >= 2
            proc.send_signal(signal.SIGTERM)
            assert any("STOPPING=1" in m for m in _receive(sock, "STOPPING=1", 20))
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
