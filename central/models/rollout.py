"""Rollout plans: a model version to a share of the sites first, then the rest; one way back.

`central-server model rollout NAME VERSION --percent 10` sends `install_model` to the first
10 % of the sites online now (a heartbeat in the last ONLINE_S seconds; a seeded order, so
the same sites come first every time): an offline site would not install it until it is
back, so it neither counts towards the share nor is sent it; the output says how many
offline sites are left for `--rest`. `--rest` sends to every site not sent this version yet
(offline ones get it when they reconnect: commands are queued QoS 1), `--sites a,b` to a
chosen group. Progress comes from the commands' replies and the heartbeats (which model each
camera runs); `--back` sends `rollback_model` to every site that installed the version in
this rollout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from central.config import CentralConfig, mqtt_password
from central.errors import InvalidInputError
from central.integrity.findings import audit_system
from central.models.registry import ModelRegistry
from central.storage.db import CentralDatabase
from fsv_contract.models import VERB_INSTALL_MODEL, VERB_ROLLBACK_MODEL, model_label

# A site is online for a rollout's share when it sent a heartbeat this recently (edges send
# one every 10-60 s; the same window as the `fsv_sites_reporting` metric).
ONLINE_S = 90.0

# (site, verb, args) -> request id: logs the command in `commands` and publishes it.
Sender = Callable[[str, str, dict[str, Any]], str]


def site_order(name: str, version: str, sites: list[str]) -> list[str]:
    """The sites in the seeded order a rollout of this version takes them."""
    key = f"{name}@{version}"
    return sorted(sites, key=lambda s: hashlib.sha256(f"{key}\0{s}".encode()).hexdigest())


class Rollout:
    """One model version's rollout across the sites."""

    def __init__(
        self,
        database: CentralDatabase,
        registry: ModelRegistry,
        name: str,
        version: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.registry = registry
        self.name, self.version = name, version
        self.label = model_label(name, version)
        self._clock = clock

    def sites(self) -> list[str]:
        """Every site central knows."""
        with self.database.read() as db:
            return [r["id"] for r in db.query("select id from sites order by id")]

    def online(self) -> set[str]:
        """Sites whose last heartbeat is at most ONLINE_S old."""
        with self.database.read() as db:
            rows = db.query(
                "select site from agent_status where last_heartbeat_at >= ?",
                [self._clock() - ONLINE_S],
            )
            return {r["site"] for r in rows}

    def offline_left(self) -> list[str]:
        """Sites not sent this version yet that are offline now (what `--rest` would add)."""
        online, done = self.online(), set(self.sent())
        return [s for s in self.sites() if s not in done and s not in online]

    def sent(self) -> list[str]:
        """Sites this version was sent to (install), in the order of their first send."""
        with self.database.read() as db:
            rows = db.query(
                "select site_id from model_rollouts where action = 'install' "
                "and name = ? and version = ? group by site_id "
                "order by min(requested_at), site_id",
                [self.name, self.version],
            )
            return [r["site_id"] for r in rows]

    def choose(
        self, percent: float | None = None, rest: bool = False, group: list[str] | None = None
    ) -> list[str]:
        """The sites to send to now: a share of those online, the rest, or a named group."""
        if (percent is not None) + rest + (group is not None) != 1:
            raise InvalidInputError("give exactly one of --percent, --rest and --sites")
        known = self.sites()
        done = set(self.sent())
        if group is not None:
            unknown = sorted(set(group) - set(known))
            if unknown:
                raise InvalidInputError(f"--sites: no site {', '.join(unknown)}")
            return [s for s in group if s not in done]
        ordered = site_order(self.name, self.version, known)
        if rest:
            return [s for s in ordered if s not in done]
        assert percent is not None
        if not 0 < percent <= 100:
            raise InvalidInputError("--percent: a share of the sites in (0, 100]")
        online = self.online()
        reachable = [s for s in ordered if s in online]
        share = reachable[: math.ceil(len(reachable) * percent / 100)]
        return [s for s in share if s not in done]

    def install(self, sites: list[str], send: Sender, by: str, shadow: bool = False) -> list[str]:
        """Send `install_model` to each site; returns the request ids."""
        self.registry.get(self.name, self.version)  # NotFoundError for an unknown version
        args = self.registry.install_args(self.name, self.version, [], shadow)
        action = "shadow" if shadow else "install"
        return [self._send(site, VERB_INSTALL_MODEL, args, action, by, send) for site in sites]

    def back(self, send: Sender, by: str) -> list[str]:
        """Send `rollback_model` to every site this rollout installed the version on."""
        sites = [s for s, state in self.progress()["sites"].items() if state["state"] == "done"]
        args = ModelRegistry.rollback_args([])
        return [self._send(site, VERB_ROLLBACK_MODEL, args, "rollback", by, send)
                for site in sites]  # fmt: skip

    def _send(
        self, site: str, verb: str, args: dict[str, Any], action: str, by: str, send: Sender
    ) -> str:
        request_id = send(site, verb, args)
        self.registry.record_rollout(request_id, site, action, [], by, self.name, self.version)
        with self.database.transaction() as db:
            detail: dict[str, object] = {
                "name": self.name, "version": self.version, "request_id": request_id, "by": by,
            }  # fmt: skip
            audit = "model_install" if verb == VERB_INSTALL_MODEL else "model_rollback"
            audit_system(db, audit, site, f"site:{site}", detail, self._clock())
        return request_id

    def progress(self) -> dict[str, Any]:
        """Per site: the last command of this rollout and its reply, and how many cameras
        the heartbeat says run the version; with totals."""
        with self.database.read() as db:
            rows = list(
                db.query(
                    "select r.site_id, r.action, r.requested_at, c.ok, c.error, c.replied_at "
                    "from model_rollouts r left join commands c on c.request_id = r.request_id "
                    "where r.name = ? and r.version = ? and r.action in ('install', 'rollback') "
                    "order by r.requested_at",
                    [self.name, self.version],
                )
            )
            beats = {
                r["site"]: r["heartbeat"]
                for r in db.query("select site, heartbeat from agent_status")
            }
        sites: dict[str, dict[str, Any]] = {}
        for r in rows:  # the last command per site wins
            state = "sent" if r["replied_at"] is None else ("done" if r["ok"] else "failed")
            sites[r["site_id"]] = {"action": r["action"], "state": state, "error": r["error"],
                                   "requested_at": r["requested_at"]}  # fmt: skip
        for site, item in sites.items():
            cameras = json.loads(beats[site]).get("cameras", []) if beats.get(site) else []
            item["cameras"] = len(cameras)
            item["running"] = sum(1 for c in cameras if c.get("model") == self.label)
        installs = [s for s in sites.values() if s["action"] == "install"]
        return {
            "model": self.label,
            "sites": sites,
            "sent": len(installs),
            "done": sum(1 for s in installs if s["state"] == "done"),
            "failed": sum(1 for s in installs if s["state"] == "failed"),
            "running": sum(1 for s in installs if s["cameras"] and s["running"] == s["cameras"]),
            "rolled_back": sum(1 for s in sites.values() if s["action"] == "rollback"),
            "of_sites": len(self.sites()),
        }


@contextlib.contextmanager
def broker_sender(config: CentralConfig, database: CentralDatabase) -> Iterator[Sender]:
    """A sender for the CLI: its own short MQTT connection on the command-line account
    (`{username}.cli`, central's password): the broker names a client by its user name, so
    central's own name would take over the server's session and lose what it had queued.
    Each command is logged like the server does."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from central.ingest.accounts import cli_username
    from central.ingest.commands import Commands

    mq = config.mqtt
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{mq.client_id}-cli-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(cli_username(mq.username), mqtt_password(mq))
    if mq.tls is not None:
        client.tls_set(
            ca_certs=str(mq.tls.ca_file) if mq.tls.ca_file else None,
            certfile=str(mq.tls.cert_file) if mq.tls.cert_file else None,
            keyfile=str(mq.tls.key_file) if mq.tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    client.connect(mq.host, mq.port, keepalive=mq.keepalive_s)
    client.loop_start()

    class _Publisher:
        def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
            info = client.publish(topic, payload, qos=qos)
            info.wait_for_publish(timeout=30)
            if not info.is_published():
                raise InvalidInputError(f"the broker did not take {topic} within 30 s")

    commands = Commands(database, _Publisher())  # type: ignore[arg-type]
    try:
        yield commands.send
    finally:
        client.loop_stop()
        client.disconnect()
