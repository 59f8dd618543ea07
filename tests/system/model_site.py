"""A site for the model tests on real processes: Mosquitto with the shipped accounts and
ACL, `central-server run`, and an edge agent recording the demo cameras over RTSP.

`ModelSite.prepare()` writes central's config and seeds it (register model versions then,
before central runs); `start_central()` and `start_edge()` start the processes; `close()`
stops them in reverse. The RTSP server is the session's (`demo_rtsp` in conftest.py).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from testbed.central_rows import new_central_database, with_database
from testbed.demo import SITE, SiteBroker, central_config, edge_config, start_site_broker
from testbed.ports import free_port, port_accepts
from testbed.processes import spawn_python, terminate
from testbed.rtsp import RtspServer

REPO = Path(__file__).resolve().parents[2]
CAMERA = "disposal-1"


class Api:
    """Central's API as one user."""

    def __init__(self, base: str, username: str, password: str) -> None:
        self.base = base
        self.token: str | None = None
        body = {"username": username, "password": password, "kind": "bearer"}
        self.token = self.call("POST", "/api/v1/auth/login", body)["token"]

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def camera_model(self, camera: str = CAMERA) -> str | None:
        """The model the site's last heartbeat names for `camera`."""
        value = self.call("GET", f"/api/v1/sites/{SITE}/models")["cameras"].get(camera)
        return str(value) if value else None


def wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """`check()`'s first truthy value within `timeout` seconds (polled every 0.25 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


class ModelSite:
    """Broker, central and one edge agent under `root`."""

    def __init__(self, root: Path, rtsp: RtspServer) -> None:
        self.root = root
        self.rtsp = rtsp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.broker: SiteBroker | None = None
        self.config = root / "central.yaml"
        self.env: dict[str, str] = {}
        self.data_dir = root / "central"
        self.http_port = 0
        self.admin_password = ""
        self.edge_yaml = root / "edge.yaml"
        self.edge_env: dict[str, str] = {}
        self._api: Api | None = None
        self.database = new_central_database()

    def prepare(self) -> None:
        """Broker, central's config, the demo organisation and users (central not running)."""
        self.broker = start_site_broker(self.root, SITE)
        self.http_port = free_port()
        config = central_config(self.root, self.http_port, self.broker.broker.port,
                                self.broker.admin)  # fmt: skip
        with_database(config, self.database)
        self.data_dir = Path(config["data_dir"])
        self.config.write_text(yaml.safe_dump(config))
        self.env = {**os.environ, "CENTRAL_MQTT_PASSWORD": self.broker.central_password}
        out = self.cli("seed-demo", "--json", "--site", f"{SITE}=slaughter_a")
        users = json.loads(out)["users"]
        self.admin_password = next(u for u in users if u["username"] == "admin")["password"]

    def cli(self, *args: str) -> str:
        """Run `central-server ARGS -c central.yaml`; its stdout (it must succeed)."""
        done = subprocess.run(
            [sys.executable, "-m", "central", *args, "-c", str(self.config)],
            env=self.env, capture_output=True, text=True, cwd=REPO, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start_central(self) -> None:
        """`central-server run`, listening."""
        self.procs.append(spawn_python(["-m", "central", "run", "-c", str(self.config)],
                                       self.env, self.root / "central.log"))  # fmt: skip
        wait(lambda: port_accepts(self.http_port), 60, "central to listen")

    @property
    def api(self) -> Api:
        """The API as the demo admin."""
        if self._api is None:
            self._api = Api(f"http://127.0.0.1:{self.http_port}", "admin", self.admin_password)
        return self._api

    def edge_config(self, cameras: list[str] | None = None) -> dict[str, Any]:
        """The demo edge's config with managed models on, 5 s segments, 2 s heartbeats."""
        assert self.broker is not None
        public_key = self.root / "central-models.pem"
        public_key.write_text(self.cli("model", "public-key"))
        central_url = f"http://127.0.0.1:{self.http_port}"
        edge = edge_config(self.root, self.rtsp, self.broker.broker.port, central_url)
        if cameras is not None:
            edge["cameras"] = [c for c in edge["cameras"] if c["id"] in cameras]
        edge["mqtt"]["heartbeat_interval_s"] = 2
        edge["storage"]["segment_seconds"] = 5
        edge["models"] = {"public_key": str(public_key)}
        return edge

    def start_edge(self, edge: dict[str, Any] | None = None, log: str = "edge-agent.log") -> Path:
        """Start the edge agent (with `edge`, else the last config written); its log file."""
        assert self.broker is not None
        if edge is not None:
            self.edge_yaml.write_text(yaml.safe_dump(edge))
        self.edge_env = {**os.environ, "EDGE_CRED_MQTT_USER": SITE,
                         "EDGE_CRED_MQTT_PASSWORD": self.broker.site_password}  # fmt: skip
        path = self.root / log
        self.procs.append(spawn_python(["-m", "edge_agent", "run", "-c", str(self.edge_yaml)],
                                       self.edge_env, path))  # fmt: skip
        return path

    def stop_edge(self) -> None:
        """Stop the edge agent (the last process started)."""
        terminate(self.procs.pop(), 20)

    def segments(self, camera: str = CAMERA) -> int:
        """How many segments of `camera` the edge's index holds."""
        index = self.root / "edge-state" / "index.db"
        if not index.exists():
            return 0
        db = sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute("select count(*) from segments where camera = ?", [camera])
            return int(row.fetchone()[0])
        except sqlite3.OperationalError:
            return 0
        finally:
            db.close()

    def all_alive(self) -> bool:
        """Whether every process started is still running."""
        return all(p.poll() is None for p in self.procs)

    def close(self) -> None:
        """Stop the processes in reverse and the broker."""
        for proc in reversed(self.procs):
            terminate(proc, 20)
        self.procs.clear()
        if self.broker is not None:
            self.broker.broker.close()
