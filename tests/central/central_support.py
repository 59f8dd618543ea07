"""Helpers of the regulator tests: a config on a temp dir and a seeded running app."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import TestClient

from central.api.common import SERVICES
from central.config import CentralConfig
from central.regulation.seed import seed_demo
from central.services import Services, build_services
from central.storage.db import CentralDatabase
from fsv_contract import EventPayload
from testbed.ports import free_port


def make_config(
    tmp_path: Path, mqtt_port: int | None = None, database: str | None = None, **sections: Any
) -> CentralConfig:
    """A config on `tmp_path`; MQTT on `mqtt_port` (default: a port where nothing listens);
    `database`: a PostgreSQL URL (default: SQLite in the data folder)."""
    password = tmp_path / "mqtt-password"
    password.write_text("test\n")
    data: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "mqtt": {
            "port": mqtt_port or free_port(),
            "password_file": str(password),
            "client_id": f"central-{uuid.uuid4().hex[:8]}",
            "reconnect_max_s": 2,
        },
        "web": {"cookie_secure": False, "base_url": "http://127.0.0.1:8080"},
    }
    if database is not None:
        data["database"] = database
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return CentralConfig.model_validate(data)


def node_config(
    tmp_path: Path,
    node: str,
    port: int,
    lease_s: float,
    renew_s: float,
    database: str | None = None,
    **sections: Any,
) -> CentralConfig:
    """The config of node `node` of a two-node cluster on one database (`make_config`'s),
    serving HTTP on `port`, its leases held for `lease_s` and renewed every `renew_s`."""
    cluster = {"nodes": 2, "node_id": node, "lease_s": lease_s, "renew_s": renew_s}
    http = {"port": port}
    return make_config(tmp_path, database=database, http=http, cluster=cluster, **sections)


def seed_nodes(database: CentralDatabase, config: CentralConfig) -> dict[str, Any]:
    """The demo tree and its accounts seeded into the nodes' database; seed_demo's result."""
    return seed_demo(build_services(database, config.web, config.push, config.data_dir, None))


class Central:
    """A running central app with the demo tree, its accounts and helpers."""

    def __init__(self, client: TestClient[Any, Any], seed: dict[str, Any]) -> None:
        self.client = client
        self.seed = seed
        self.passwords = {u.username: u.password for u in seed["users"]}
        self._tokens: dict[str, str] = {}

    @property
    def svc(self) -> Services:
        """The app's regulator services."""
        return self.client.app[SERVICES]

    async def token(self, username: str) -> dict[str, str]:
        """Authorization headers of a bearer session of `username`."""
        if username not in self._tokens:
            resp = await self.client.post(
                "/api/v1/auth/login",
                json={"username": username, "password": self.passwords[username], "kind": "bearer"},
            )
            assert resp.status == 200, await resp.text()
            self._tokens[username] = (await resp.json())["token"]
        return {"Authorization": f"Bearer {self._tokens[username]}"}

    def forget(self, username: str) -> None:
        """Drop the cached token of `username` (after a logout)."""
        self._tokens.pop(username, None)

    async def event(self, site: str, camera: str = "cam1", **fields: Any) -> str:
        """Feed an event through ingest's hook, as ingest does after storing it."""
        event_id = uuid.uuid4()
        payload = EventPayload.model_validate(
            {
                "event_id": str(event_id),
                "site": site,
                "camera": camera,
                "phase": "start",
                "kind": "no_chef_hat",
                "station": "kitchen_prep",
                "rule": "hat",
                "start": datetime.now(UTC).isoformat(),
                "score": 0.9,
                **fields,
            }
        )
        await asyncio.to_thread(self.svc.hooks.on_event, payload)
        return str(event_id)


def jpeg_bytes(seed: int = 0) -> bytes:
    """A real small JPEG photo."""
    import cv2
    import numpy as np

    image = np.full((48, 64, 3), (seed * 37) % 256, dtype=np.uint8)
    cv2.putText(image, str(seed), (5, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return bytes(data.tobytes())


async def submit_rectification(
    central: Central, username: str, alert_id: str, note: str, photos: list[bytes]
) -> Any:
    """POST the multipart rectification as `username`; returns the response."""
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("note", note)
    for i, data in enumerate(photos):
        form.add_field("photos", data, filename=f"fix{i}.jpg", content_type="image/jpeg")
    return await central.client.post(
        f"/api/v1/alerts/{alert_id}/rectification", data=form, headers=await central.token(username)
    )


async def call(central: Central, username: str, method: str, path: str, **kw: Any) -> Any:
    """An API call as `username` (bearer); returns (status, body)."""
    resp = await central.client.request(method, path, headers=await central.token(username), **kw)
    ctype = resp.headers.get("Content-Type", "")
    body = await resp.json() if "json" in ctype else await resp.read()
    return resp.status, body


def start_node(config: CentralConfig, tmp_path: Path) -> subprocess.Popen[bytes]:
    """`central-server run` in its own process on `config` (its YAML and log in tmp_path)."""
    path = tmp_path / f"{config.cluster.node_id}.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    log = (tmp_path / f"{config.cluster.node_id}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "central", "run", "-c", str(path)],
        cwd=Path(__file__).parents[2], env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
