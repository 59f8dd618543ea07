"""The system under attack: real mosquitto (shipped policy), `central-server run`, `seed-demo`,
broker logins for sites of two counties, all on the loopback; plus a plain HTTP helper."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish
import yaml

from central.ingest.accounts import issue_site_credentials
from central.settings import WebConfig
from fsv_contract import CameraStatePayload, EventPayload, MediaRef, encode, topics
from testbed.central_rows import new_central_database, with_database
from testbed.demo import start_site_broker
from testbed.mosquitto import Broker
from testbed.ports import free_port, port_accepts
from testbed.processes import spawn_python, terminate

REPO = Path(__file__).resolve().parents[2]
SITE_A = "demo-canteen-a"
SITE_B = "demo-canteen-b"
SITE_SLAUGHTER = "demo-slaughter-a"
CAMERA = "cam1"
# The users' own client, as the trusted proxy names it (the probes attack from others).
USERS_CLIENT = "192.0.2.10"


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until true; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class Reply:
    """One HTTP answer, never raised."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON (None if it is not)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class SecurityWorld:
    """Broker, central process and seeded data; `start` then `stop`."""

    root: Path
    port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    broker: Broker | None = None
    users: dict[str, str] = field(default_factory=dict)
    orgs: dict[str, int] = field(default_factory=dict)
    site_passwords: dict[str, str] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)
    database: str | None = field(default_factory=new_central_database)

    @property
    def url(self) -> str:
        """Central's base URL."""
        return f"http://127.0.0.1:{self.port}"

    # --- start and stop -------------------------------------------------------------------

    def start(self) -> None:
        """Broker with central's and two sites' logins, central seeded and running."""
        self.root.mkdir(parents=True, exist_ok=True)
        site_broker = start_site_broker(self.root, SITE_A)
        self.broker = site_broker.broker
        self.site_passwords[SITE_A] = site_broker.site_password
        self.site_passwords[SITE_B] = issue_site_credentials(
            site_broker.admin, SITE_B, "central"
        ).password
        self.site_passwords[SITE_SLAUGHTER] = issue_site_credentials(
            site_broker.admin, SITE_SLAUGHTER, "central"
        ).password
        self.broker.reload()
        config = self.root / "central.yaml"
        config.write_text(
            yaml.safe_dump(
                with_database(
                    {
                        "data_dir": str(self.root / "central"),
                        "http": {"host": "127.0.0.1", "port": self.port},
                        "mqtt": {
                            "host": "127.0.0.1",
                            "port": self.broker.port,
                            "reconnect_max_s": 2,
                        },
                        "broker": {
                            "password_file": str(site_broker.admin.password_file),
                            "acl_file": str(site_broker.admin.acl_file),
                        },
                        "web": self._web_section(),
                    },
                    self.database,
                )
            )
        )
        env = {**os.environ, "CENTRAL_MQTT_PASSWORD": site_broker.central_password}
        seeded = subprocess.run(
            [sys.executable, "-m", "central", "seed-demo", "--json", "-c", str(config)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
            timeout=120,
        )
        result = json.loads(seeded.stdout)
        self.users = {u["username"]: u["password"] for u in result["users"]}
        self.orgs = result["orgs"]
        log = self.root / "central.log"
        self.procs.append(
            spawn_python(["-m", "central", "run", "-c", str(config)], env, log),
        )
        wait_until(lambda: port_accepts(self.port), 40, "central to listen")
        for username in self.users:  # signed in before any probe throttles logins
            self.token(username)

    def _web_section(self) -> dict[str, Any]:
        web: dict[str, Any] = {"base_url": self.url, "cookie_secure": False}
        # The probes play a reverse proxy on the loopback that names each client in
        # X-Forwarded-For, as docs/security.md recommends (where central has the setting).
        if "trusted_proxies" in WebConfig.model_fields:
            web["trusted_proxies"] = ["127.0.0.1/32"]
        return web

    def stop(self) -> None:
        """Central, then the broker."""
        for proc in reversed(self.procs):
            terminate(proc, 20)
        if self.broker is not None:
            self.broker.close()

    def log_tail(self) -> str:
        """The end of central's log."""
        path = self.root / "central.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # --- HTTP -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        user: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Reply:
        """Any request (as `user` with a bearer token when given); the reply, never raised."""
        sent = dict(headers or {})
        if user is not None:
            sent["Authorization"] = f"Bearer {self.token(user)}"
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=sent)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Reply(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as e:
            return Reply(e.code, dict(e.headers), e.read())

    def call(self, method: str, path: str, user: str | None = None, data: Any = None) -> Reply:
        """A JSON call."""
        body = None if data is None else json.dumps(data).encode()
        return self.request(
            method, path, user=user, body=body, headers={"Content-Type": "application/json"}
        )

    def token(self, username: str) -> str:
        """A bearer token of `username` (cached)."""
        if username not in self._tokens:
            body = {"username": username, "password": self.users[username], "kind": "bearer"}
            reply = self.request(
                "POST",
                "/api/v1/auth/login",
                body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json", "X-Forwarded-For": USERS_CLIENT},
            )
            assert reply.status == 200, f"login of {username}: {reply.status} {reply.text}"
            self._tokens[username] = reply.json()["token"]
        return self._tokens[username]

    def forget(self, username: str) -> None:
        """Drop a cached token (after a logout probe)."""
        self._tokens.pop(username, None)

    # --- the edge's side --------------------------------------------------------------------

    def publish(self, site: str, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish with `site`'s broker login (QoS 1)."""
        assert self.broker is not None
        publish.single(
            topic,
            payload,
            qos=1,
            retain=retain,
            hostname="127.0.0.1",
            port=self.broker.port,
            auth={"username": site, "password": self.site_passwords[site]},
            client_id=site,
        )

    def raise_alert(
        self,
        site: str,
        media: tuple[str, bytes, str] | None = None,
        camera: str = CAMERA,
        wait: bool = True,
    ) -> str:
        """Camera online and an event (announcing `media` as its snapshot); the alert id.

        With `wait`, returns once central opened the alert.
        """
        now = datetime.now(UTC)
        state = CameraStatePayload(camera=camera, state="online", since=now)
        self.publish(site, topics.camera_state(site, camera), encode(state), retain=True)
        snapshot = None
        if media is not None:
            name, data, ctype = media
            snapshot = MediaRef(
                name=name,
                sha256=hashlib.sha256(data).hexdigest(),
                bytes=len(data),
                content_type=ctype,
            )
        event = EventPayload(
            event_id=uuid.uuid4(), site=site, camera=camera, phase="start", kind="no_chef_hat",
            station="kitchen_prep", rule="hat", start=now, score=0.9, snapshot=snapshot,
        )  # fmt: skip
        self.publish(site, topics.camera_event(site, camera), encode(event))
        alert_id = str(event.event_id)
        if not wait:
            return alert_id
        wait_until(
            lambda: self.call("GET", f"/api/v1/alerts/{alert_id}", user="admin").status == 200,
            30,
            f"central to open alert {alert_id}",
        )
        return alert_id

    def put_media(self, site: str, alert_id: str, name: str, data: bytes, ctype: str) -> Reply:
        """The edge's media upload with `site`'s login."""
        login = base64.b64encode(f"{site}:{self.site_passwords[site]}".encode()).decode()
        return self.request(
            "PUT",
            f"/api/v1/media/{alert_id}/{name}",
            body=data,
            headers={
                "Authorization": f"Basic {login}",
                "X-Content-SHA256": hashlib.sha256(data).hexdigest(),
                "Content-Type": ctype,
            },
        )
