"""A fleet of simulated sites against a real Mosquitto, shared by the ingest benchmarks.

The broker runs central's shipped policy (password file, ACL, the limits of
configs/mosquitto/mosquitto.conf) with one login per site; a site is a real MQTT 5 client
under its own login, so the ACL and the per-site client id apply as in production.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from central.config import BrokerAdminConfig
from central.ingest.accounts import central_passwords, set_passwords, write_acl
from testbed.mosquitto import Broker, BrokerOptions
from testbed.ports import free_port

REPO = Path(__file__).resolve().parents[1]
CENTRAL_PASSWORD = "bench-central"
# The shipped broker settings a benchmark keeps (the rest name files of a real install).
SHIPPED_SETTINGS = (
    "use_username_as_clientid", "max_packet_size", "max_queued_bytes", "set_tcp_nodelay",
)  # fmt: skip


def site_credentials(sites: Iterable[str]) -> dict[str, str]:
    """A random password for each site login."""
    return {site: uuid.uuid4().hex for site in sites}


def start_fleet_broker(
    work: Path,
    creds: dict[str, str],
    settings: tuple[str, ...] = SHIPPED_SETTINGS,
    nodes: Iterable[str] = (),
) -> Broker:
    """Mosquitto with central's accounts (CENTRAL_PASSWORD; one per node of `nodes` as
    `init-broker --node` makes them), the sites' logins and the ACL, under the shipped
    `settings` (by default every one a benchmark keeps)."""
    admin = BrokerAdminConfig(password_file=work / "passwd", acl_file=work / "acl")
    central = central_passwords("central", CENTRAL_PASSWORD, nodes)
    set_passwords(admin, {**central, **creds})
    write_acl(admin, "central")
    conf = [
        line
        for line in (REPO / "configs/mosquitto/mosquitto.conf").read_text().splitlines()
        if line and not line.startswith("#") and line.split()[0] in settings
    ]
    broker = Broker(options=BrokerOptions(
        allow_anonymous=False, password_file=admin.password_file, acl_file=admin.acl_file,
        max_inflight_messages=1000, extra_config=conf))  # fmt: skip
    broker.start()
    return broker


def site_client(port: int, site: str, password: str, inflight: int = 20) -> mqtt.Client:
    """A connected, running MQTT 5 client of one site (its login is its client id)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=site, protocol=mqtt.MQTTv5)
    client.username_pw_set(site, password)
    client.max_inflight_messages_set(inflight)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def stop_client(client: mqtt.Client) -> None:
    """Disconnect and stop the network thread (paho's loop_stop can race the thread ending on
    its own after the disconnect: it then finds no thread to join)."""
    client.disconnect()
    try:
        client.loop_stop()
    except AttributeError:
        pass


def publish_all(port: int, site: str, password: str, messages: list[tuple[str, bytes]]) -> None:
    """A generator process: publish pre-encoded (topic, payload) pairs at QoS 1 as fast as
    the broker takes them (100 in flight), then wait for the last ack."""
    client = site_client(port, site, password, inflight=100)
    info = None
    for topic, data in messages:
        info = client.publish(topic, data, qos=1)
    if info is not None:
        info.wait_for_publish(timeout=600)
    stop_client(client)


class CentralRun:
    """A `central-server run` process on its own data folder, and read-only SQL on its database.

    `mqtt_connected` (what the benchmark asks central over HTTP) says when it is up.
    """

    start_timeout_s = 60.0
    poll_s = 0.1
    stop_timeout_s = 30.0

    def __init__(
        self, workdir: Path, broker_port: int, extra: dict[str, Any] | None = None
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.db_path = workdir / "data" / "central.db"
        self.config = workdir / "central.yaml"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(yaml.safe_dump({
            "data_dir": str(workdir / "data"), "log_level": "WARNING",
            "http": {"port": self.port},
            "mqtt": {"port": broker_port, "reconnect_max_s": 1},
            **(extra or {}),
        }))  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def mqtt_connected(self) -> bool:
        """Whether central says its broker connection is up (OSError: not answering yet)."""
        raise NotImplementedError

    def start(self) -> None:
        env = {**os.environ, "CENTRAL_MQTT_PASSWORD": CENTRAL_PASSWORD}
        with (self.workdir / "central.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "central", "run", "-c", str(self.config)],
                env=env, stdout=log, stderr=log, cwd=REPO,
            )  # fmt: skip
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            try:
                if self.mqtt_connected():
                    return
            except OSError:
                pass
            time.sleep(self.poll_s)
        raise RuntimeError("central did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(self.stop_timeout_s)
            self.proc = None

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()
