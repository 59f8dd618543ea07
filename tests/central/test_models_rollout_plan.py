"""Rollout plans from the CLI over a real broker: 10 % of the sites, then the rest, then back."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from central_support import make_config
from paho.mqtt.enums import CallbackAPIVersion

from central.cli import main
from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import Ingest
from central.ingest.store import IngestStore
from central.models.registry import registry_for
from central.models.rollout import Rollout
from central.schema import apply_migrations
from central.storage.db import CentralDatabase
from edge_agent.detection.detector import default_model_path
from fsv_contract import CameraStats, HeartbeatPayload, ReplyPayload, encode, topics
from testbed.mosquitto import Broker

SITES = [f"site-{i:02d}" for i in range(20)]


def _setup(tmp_path: Path, port: int, url: str | None) -> tuple[Path, CentralDatabase]:
    config = make_config(tmp_path, mqtt_port=port, database=url)
    path = tmp_path / "central.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    database = CentralDatabase(config.database_url)
    apply_migrations(database)
    with database.transaction() as db:
        db.table("orgs").insert({"id": 1, "name": "city", "level": "city", "org_path": "/1/",
                                 "created_at": 0.0}, alter=True)  # fmt: skip
        for site in SITES:
            db.table("sites").insert({"id": site, "org_id": 1, "org_path": "/1/", "name": site,
                                      "created_at": 0.0})  # fmt: skip
    registry = registry_for(database, config.data_dir)
    registry.add(default_model_path(), "person", "2", ["person"], {}, "test")
    return path, database


class Edges:
    """Every site's command topic, as the edges would read it."""

    def __init__(self, port: int) -> None:
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edges-probe")
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("fsv/v1/+/cmd/#", qos=1)
        self.client.loop_start()

    def _message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        with self.lock:
            self.seen.append((parts[2], parts[4]))

    def wait(self, count: int) -> list[tuple[str, str]]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.seen) >= count:
                    return list(self.seen)
            time.sleep(0.05)
        raise AssertionError(f"only {self.seen} arrived")


def _beat(site: str, model: str | None) -> RawMessage:
    beat = HeartbeatPayload(ts=datetime.now(UTC), uptime_s=1, disk_free_bytes=1,
                            disk_total_bytes=2, cpu_percent=1,
                            cameras=[CameraStats(camera="cam1", model=model)])  # fmt: skip
    return RawMessage(topics.heartbeat(site), encode(beat), 0.0)


def _edge_answers(database: CentralDatabase, sites: list[str]) -> None:
    """Each site replies ok and its heartbeat names the new model, through ingest."""
    ingest = Ingest(IngestStore(database))
    with database.read() as db:
        rows = list(db.query(
            f"select request_id, site from commands where site in ({','.join('?' * len(sites))})",
            sites,
        ))  # fmt: skip
    now = datetime.now(UTC)
    raw = []
    for r in rows:
        reply = ReplyPayload(request_id=r["request_id"], verb="install_model", ok=True,
                             result={"installed": "person@2"}, finished_at=now)  # fmt: skip
        raw.append(RawMessage(topics.reply(r["site"], r["request_id"]), encode(reply), 0.0))
        raw.append(_beat(r["site"], "person@2"))
    ingest.process(raw)


@pytest.mark.slow
def test_ten_percent_then_the_rest_then_one_command_back(
    tmp_path: Path,
    mosquitto_broker: Broker,
    capsys: pytest.CaptureFixture[str],
    central_db_url: str | None,
) -> None:
    config, database = _setup(tmp_path, mosquitto_broker.port, central_db_url)
    edges = Edges(mosquitto_broker.port)
    try:
        base = ["model", "rollout", "person", "2", "-c", str(config)]
        # Half the sites have never sent a heartbeat: 30 % is counted over the 10 online
        # ones (3 sites), not over all 20 (6).
        online = SITES[10:]
        Ingest(IngestStore(database)).process([_beat(site, None) for site in online])
        assert main([*base, "--percent", "30"]) == 0
        first = edges.wait(3)
        assert len(first) == 3 and {verb for _, verb in first} == {"install_model"}
        first_sites = sorted(site for site, _ in first)
        assert set(first_sites) <= set(online)
        out = capsys.readouterr().out
        assert "sent to 3 site(s)" in out and "10 offline site(s) not counted" in out, out
        assert ", ".join(SITES[:10]) in out
        # The same 30 % come first every time: asking again sends nothing new.
        assert main([*base, "--percent", "30"]) == 0
        assert "sent to 0 site(s)" in capsys.readouterr().out
        _edge_answers(database, first_sites)
        assert main([*base, "--status"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert (status["sent"], status["done"], status["running"], status["of_sites"]) == (
            3, 3, 3, 20,
        )  # fmt: skip

        assert main([*base, "--rest"]) == 0
        everyone = edges.wait(20)
        assert sorted(site for site, _ in everyone) == SITES  # each site once
        capsys.readouterr()

        assert main([*base, "--back"]) == 0  # only the three that installed it go back
        back = edges.wait(23)[20:]
        assert sorted(back) == [(s, "rollback_model") for s in first_sites]
        out = capsys.readouterr().out
        status = json.loads(out[out.index("{") :])
        assert status["rolled_back"] == 3 and status["sent"] == 17

        assert main([*base[:3], "9", *base[4:], "--rest"]) == 1  # an unknown version
        assert main([*base, "--sites", "site-00,nowhere"]) == 1
        assert "no site nowhere" in capsys.readouterr().err
        with database.read() as db:
            audited = db.execute(
                "select count(*) from audit_log where action in ('model_install', 'model_rollback')"
            ).fetchone()[0]
        assert audited == 23
    finally:
        edges.client.loop_stop()
        edges.client.disconnect()
        database.close()


@pytest.mark.databases("sqlite", "postgres")
def test_the_sites_sent_a_version_come_in_the_order_of_their_first_send(
    tmp_path: Path, central_db_url: str | None
) -> None:
    database = CentralDatabase(central_db_url or tmp_path / "central.db")
    try:
        apply_migrations(database)
        sends = [("b", 30.0), ("a", 10.0), ("b", 5.0), ("c", 20.0), ("a", 40.0)]
        with database.transaction() as db:
            for i, (site, at) in enumerate(sends):
                db.table("model_rollouts").insert(
                    {"request_id": f"r{i}", "site_id": site, "action": "install",
                     "name": "person", "version": "2", "cameras": "[]", "requested_at": at}
                )  # fmt: skip
            db.table("model_rollouts").insert(
                {"request_id": "other", "site_id": "d", "action": "install", "name": "person",
                 "version": "1", "cameras": "[]", "requested_at": 1.0}
            )  # fmt: skip
        rollout = Rollout(database, registry_for(database, tmp_path / "data"), "person", "2")
        assert rollout.sent() == ["b", "a", "c"]  # b first went out at 5, a at 10, c at 20
    finally:
        database.close()
