"""A real broker with the shipped policy, real `central-server` and `edge-agent` processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from central.config import BrokerAdminConfig
from central.ingest.accounts import (
    central_passwords,
    issue_site_credentials,
    set_passwords,
    write_acl,
)
from testbed.central_admin import AdminReader, create_admin
from testbed.central_rows import CentralRows, new_central_database, with_database
from testbed.demo import shipped_broker_options
from testbed.mosquitto import Broker
from testbed.ports import free_port
from testbed.processes import spawn_python

REPO = Path(__file__).parents[3]
CENTRAL_PASSWORD = "central-test-password"


def wait_for(check: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; AssertionError naming `what` if not."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


class _ChildProcess:
    """A `python -m <program> run` child logging into `workdir/<log_name>`."""

    log_name = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, module: str, config_path: Path, env: dict[str, str]) -> None:
        args = ["-m", module, "run", "-c", str(config_path)]
        self.proc = spawn_python(args, env, self.workdir / self.log_name)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop the process with `sig` and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)
        self.proc = None

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, limit: int = 3000) -> str:
        """The end of its log."""
        path = self.workdir / self.log_name
        return path.read_bytes()[-limit:].decode(errors="replace") if path.exists() else ""


class CentralProcess(_ChildProcess):
    """`python -m central run` with its own config; stats over HTTP, rows from its database."""

    log_name = "central.log"

    def __init__(self, workdir: Path, broker_port: int, admin: BrokerAdminConfig) -> None:
        super().__init__(workdir)
        self.port = free_port()
        self.data_dir = workdir / "data"
        self.config_path = workdir / "central.yaml"
        self.database = new_central_database()
        config = with_database({
            "data_dir": str(self.data_dir),
            "log_level": "WARNING",
            "http": {"host": "127.0.0.1", "port": self.port},
            "mqtt": {"host": "127.0.0.1", "port": broker_port, "reconnect_max_s": 2},
            "broker": {"password_file": str(admin.password_file), "acl_file": str(admin.acl_file)},
        }, self.database)  # fmt: skip
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config))
        create_admin(self.config_path)
        self.admin = AdminReader(f"http://127.0.0.1:{self.port}")

    def start(self, wait: bool = True) -> None:
        """Start the process; wait until it answers and is subscribed."""
        env = {**os.environ, "CENTRAL_MQTT_PASSWORD": CENTRAL_PASSWORD}
        self._spawn("central", self.config_path, env)
        if wait:
            wait_for(lambda: self._connected(), 30, "central to subscribe")

    def _connected(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log_tail()
        try:
            return bool(self.stats()["mqtt_connected"])
        except OSError:
            return False

    def stats(self) -> dict[str, Any]:
        """GET /api/v1/ingest/stats (admins only)."""
        data: dict[str, Any] = self.admin.get("/api/v1/ingest/stats")
        return data

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read central's database beside the running process (retried while it is busy)."""
        if self.database is not None:
            return CentralRows(self.database, self.data_dir).query(sql, args)
        deadline = time.monotonic() + 30
        while True:
            db = sqlite3.connect(self.data_dir / "central.db", timeout=10)
            try:
                return db.execute(sql, args).fetchall()
            except sqlite3.OperationalError as e:
                # After a kill -9 the first reader may have to wait for WAL recovery.
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
            finally:
                db.close()
            time.sleep(0.1)

    def event_count(self) -> int:
        """Rows in central's events table."""
        try:
            return int(self.query("select count(*) from events")[0][0])
        except sqlite3.OperationalError:
            return 0


class EdgeProcess(_ChildProcess):
    """`python -m edge_agent run` for one site without cameras: it publishes its outbox."""

    log_name = "edge.log"

    def __init__(self, workdir: Path, site: str, password: str, broker_port: int) -> None:
        super().__init__(workdir)
        self.site = site
        self.password = password
        self.storage = workdir / "storage"
        self.config_path = workdir / "edge.yaml"
        config = {
            "site_id": site,
            "storage": {"path": str(self.storage)},
            "data_dir": str(workdir / "state"),
            "log_level": "WARNING",
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker_port,
                "tls": None,
                "reconnect_max_s": 2,
                "heartbeat_interval_s": 1,
                "outbox": {"inflight": 20},
            },
        }
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(config))

    @property
    def outbox_path(self) -> Path:
        """The outbox database the agent publishes from (detectors write into it)."""
        return self.workdir / "state" / "outbox.db"

    def start(self) -> None:
        """Start the agent process."""
        env = {**os.environ, "EDGE_CRED_MQTT_USER": self.site,
               "EDGE_CRED_MQTT_PASSWORD": self.password}  # fmt: skip
        self._spawn("edge_agent", self.config_path, env)


class MqttWorld:
    """Broker (shipped policy, per-site accounts, ACL), central and edges in one folder."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.admin = BrokerAdminConfig(
            password_file=workdir / "auth" / "passwd", acl_file=workdir / "auth" / "acl"
        )
        set_passwords(self.admin, central_passwords("central", CENTRAL_PASSWORD))
        write_acl(self.admin, "central")
        self.passwords: dict[str, str] = {}
        # The broker keeps its own folder: mosquitto drops root and cannot enter tmp_path.
        self.broker = Broker(options=shipped_broker_options(self.admin))
        self.central = CentralProcess(workdir / "central", self.broker.port, self.admin)
        self.edges: list[EdgeProcess] = []

    def add_site(self, site: str) -> str:
        """Issue a site's credentials (as `central-server add-site` does); reload the broker."""
        self.passwords[site] = issue_site_credentials(self.admin, site, "central").password
        if self.broker.running:
            self.broker.reload()
        return self.passwords[site]

    def edge(self, site: str) -> EdgeProcess:
        """An edge process for an added site (not started)."""
        edge = EdgeProcess(self.workdir / f"edge-{site}", site, self.passwords[site],
                           self.broker.port)  # fmt: skip
        self.edges.append(edge)
        return edge

    def close(self) -> None:
        """Kill every process and stop the broker."""
        for edge in self.edges:
            edge.kill()
        self.central.kill()
        self.broker.close()
