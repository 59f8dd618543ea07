"""The whole video path on loopback: RTSP camera, broker, central and an edge agent (processes).

Shaped like testbed.demo, but lean for tests: one camera (main + sub), 5 s segments, no
detection, and central's relay lingering briefly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

from central.config import BrokerAdminConfig
from testbed.central_rows import new_central_database, with_database
from testbed.demo import start_site_broker
from testbed.mosquitto import Broker
from testbed.ports import free_port, port_accepts
from testbed.processes import spawn_python, terminate
from testbed.rtsp import RtspServer

REPO = Path(__file__).resolve().parents[2]
SITE = "demo-canteen-a"
CAMERA = "cam1"
# The seeded SQLite database later systems copy, and what seed-demo said of it (see _seed).
_SEEDED: tuple[Path, dict[str, Any]] | None = None


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until true; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class VideoSystem:
    """Broker, central and edge agent around a shared RTSP server; stopped in reverse."""

    def __init__(self, root: Path, rtsp: RtspServer) -> None:
        self.root = root
        self.rtsp = rtsp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.broker: Broker | None = None
        self.users: dict[str, str] = {}
        self.site_password = ""
        self._tokens: dict[str, str] = {}
        self.database = new_central_database()

    # --- start and stop -------------------------------------------------------------------

    def start(self) -> None:
        """Broker with per-site accounts, seeded central, then the edge agent."""
        self.root.mkdir(parents=True, exist_ok=True)
        site_broker = start_site_broker(self.root, SITE)
        self.site_password = site_broker.site_password
        self.broker = site_broker.broker
        self._start_central(site_broker.admin, site_broker.central_password)
        edge_yaml = self.root / "edge.yaml"
        edge_yaml.write_text(yaml.safe_dump(self._edge_config()))
        env = {
            **os.environ,
            "EDGE_CRED_MQTT_USER": SITE,
            "EDGE_CRED_MQTT_PASSWORD": self.site_password,
        }
        self._spawn("edge-agent", ["-m", "edge_agent", "run", "-c", str(edge_yaml)], env)

    def _central_config(self, admin: BrokerAdminConfig) -> dict[str, Any]:
        assert self.broker is not None
        return with_database(
            {
                "data_dir": str(self.root / "central"),
                "http": {"host": "127.0.0.1", "port": self.port},
                "mqtt": {"host": "127.0.0.1", "port": self.broker.port, "reconnect_max_s": 2},
                "broker": {
                    "password_file": str(admin.password_file),
                    "acl_file": str(admin.acl_file),
                },
                "web": {"base_url": self.url, "cookie_secure": False},
                # The viewer benchmark (bench/video.py) watches one stream 40 times as one user.
                "video_quota": {"live_per_user": 1000},
            },
            self.database,
        )

    def _start_central(self, admin: BrokerAdminConfig, password: str) -> None:
        config = self.root / "central.yaml"
        config.write_text(yaml.safe_dump(self._central_config(admin)))
        env = {**os.environ, "CENTRAL_MQTT_PASSWORD": password}
        result = self._seed(config, env)
        self.users = {u["username"]: u["password"] for u in result["users"]}
        self.orgs: dict[str, int] = result["orgs"]
        self._spawn("central", ["-m", "central", "run", "-c", str(config)], env)
        wait_until(lambda: port_accepts(self.port), 30, "central to listen")

    def _seed(self, config: Path, env: dict[str, str]) -> dict[str, Any]:
        """`central seed-demo` on this system's database; its JSON output.

        On SQLite the first system of the process seeds a database of its own and later ones
        start from a copy of that file: the same tree and accounts, without hashing the seven
        passwords again (a few seconds per system on a busy box).
        """
        global _SEEDED
        if self.database is None and _SEEDED is not None:
            template, result = _SEEDED
            data_dir = self.root / "central"
            data_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template, data_dir / "central.db")
            return result
        target = config
        if self.database is None:
            template_dir = self.root / "seeded"
            template_dir.mkdir(parents=True, exist_ok=True)
            target = template_dir / "central.yaml"
            target.write_text(yaml.safe_dump({"data_dir": str(template_dir)}))
        seeded = subprocess.run(
            [sys.executable, "-m", "central", "seed-demo", "--json", "-c", str(target)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        result: dict[str, Any] = json.loads(seeded.stdout)
        if self.database is not None:
            return result
        _SEEDED = (self.root / "seeded" / "central.db", result)
        return self._seed(config, env)

    def _edge_config(self) -> dict[str, Any]:
        assert self.broker is not None
        return {
            "site_id": SITE,
            "storage": {"path": str(self.root / "recordings"), "segment_seconds": 5},
            "data_dir": str(self.root / "edge-state"),
            "central_url": self.url,
            "mqtt": {
                "host": "127.0.0.1",
                "port": self.broker.port,
                "tls": None,
                "heartbeat_interval_s": 5,
                "reconnect_max_s": 2,
                "anchor_interval_s": 2,  # chain links reach central soon (the archive needs them)
            },
            "detection": {"enabled": False},
            "cameras": [
                {
                    "id": CAMERA,
                    "name": "后厨 Kitchen",
                    "station": "kitchen_prep",
                    "main_url": self.rtsp.url("cam1"),
                    "sub_url": self.rtsp.url("cam1_sub"),
                },
            ],
        }

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.procs.append((name, spawn_python(args, env, self.root / f"{name}.log")))

    def stop(self) -> None:
        """SIGTERM in reverse order (SIGKILL after 20 s), then the broker."""
        for _name, proc in reversed(self.procs):
            terminate(proc, 20)
        if self.broker is not None:
            self.broker.close()

    def logs(self) -> str:
        """The tail of every process log, for failure messages."""
        out = []
        for name, _ in self.procs:
            text = (self.root / f"{name}.log").read_text(errors="replace")
            out.append(f"--- {name} ---\n{text[-3000:]}")
        return "\n".join(out)

    # --- the API as a user ----------------------------------------------------------------

    def token(self, username: str) -> str:
        """A bearer token of `username`."""
        if username not in self._tokens:
            body = {"username": username, "password": self.users[username], "kind": "bearer"}
            self._tokens[username] = self.api("POST", "/api/v1/auth/login", body=body)["token"]
        return self._tokens[username]

    def api(
        self, method: str, path: str, user: str | None = None, body: Any = None, raw: bool = False
    ) -> Any:
        """A JSON API call (bytes with `raw`); raises urllib's HTTPError on an error status."""
        headers = {"Content-Type": "application/json"}
        if user is not None:
            headers["Authorization"] = f"Bearer {self.token(user)}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, timeout=30) as resp:
            data = resp.read()
            return json.loads(data) if not raw and "json" in resp.headers["Content-Type"] else data

    def recorded_ranges(self, min_s: float) -> list[dict[str, Any]]:
        """Recorded ranges of the last hour lasting at least `min_s` seconds."""
        now = time.time()
        path = f"/api/v1/video/recordings/{SITE}/{CAMERA}?start={now - 3600}&end={now}"
        ranges: list[dict[str, Any]] = self.api("GET", path, user="admin")["ranges"]
        return [r for r in ranges if r["end"] - r["start"] >= min_s]

    def raise_alert(self) -> None:
        """Publish a violation event as the site would (its broker login), QoS 1."""
        import uuid
        from datetime import UTC, datetime

        import paho.mqtt.publish as publish

        from fsv_contract import EventPayload, encode, topics

        assert self.broker is not None
        event = EventPayload(
            event_id=uuid.uuid4(),
            site=SITE,
            camera=CAMERA,
            phase="start",
            kind="no_chef_hat",
            station="kitchen_prep",
            rule="hat",
            start=datetime.now(UTC),
            score=0.9,
        )
        publish.single(
            topics.camera_event(SITE, CAMERA),
            encode(event),
            qos=1,
            hostname="127.0.0.1",
            port=self.broker.port,
            auth={"username": SITE, "password": self.site_password},
            client_id=f"{SITE}-test",
        )

    def camera_listed(self) -> bool:
        """True once central knows the edge's camera (from its retained state)."""
        cams = self.api("GET", "/api/v1/cameras", user="admin")["items"]
        return any(c["camera_id"] == CAMERA and c.get("state") == "online" for c in cams)


System = TypeVar("System", bound=VideoSystem)


@contextmanager
def running(system: System, camera_within: float | None = None) -> Iterator[System]:
    """`system` started (with `camera_within`: once central lists the edge's camera online,
    within that many seconds), its process logs printed if anything fails, stopped afterwards."""
    try:
        system.start()
        if camera_within is not None:
            wait_until(
                system.camera_listed, camera_within, "central to list the edge's camera online"
            )
        yield system
    except BaseException:
        print(system.logs())
        raise
    finally:
        system.stop()
