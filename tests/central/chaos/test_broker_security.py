"""The shipped broker policy: per-site ACL, no session takeover, passwords, TLS."""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from events import make_events
from mqtt_client import TestClient
from mqtt_world import REPO, MqttWorld, shipped_broker_options, wait_for

from edge_agent.credentials import Credential
from edge_agent.mqtt.link import MqttLink
from edge_agent.mqtt.settings import MqttConfig
from fsv_contract import CommandPayload, encode, topics
from fsv_contract.integrity import AnchorPayload
from testbed.mosquitto import Broker
from testbed.ports import free_port
from testbed.shipped_broker import chown_to_mosquitto

NOT_AUTHORIZED = 135


def test_a_site_cannot_publish_or_read_under_another_site(world: MqttWorld) -> None:
    a = TestClient(world.broker.port, "site-a", world.passwords["site-a"]).start()
    b = TestClient(world.broker.port, "site-b", world.passwords["site-b"]).start()
    try:
        assert a.connected.is_set() and b.connected.is_set()
        own, forged = make_events("site-a", 1)[0], make_events("site-b", 1)[0]
        ok_mid = a.publish(topics.camera_event("site-a", "cam-0"), encode(own))
        bad_mid = a.publish(topics.camera_event("site-b", "cam-0"), encode(forged))
        wait_for(lambda: ok_mid in a.acks and bad_mid in a.acks, 10, "both PUBACKs")
        assert not a.acks[ok_mid].is_failure
        assert a.acks[bad_mid].value == NOT_AUTHORIZED
        wait_for(lambda: world.central.event_count() == 1, 10, "the allowed event at central")
        # Chain anchors too: a site anchors only its own footage.
        anchor = AnchorPayload(cameras=[], created_at=datetime.now(UTC))
        ok_anchor = a.publish(topics.anchor("site-a"), encode(anchor))
        bad_anchor = a.publish(topics.anchor("site-b"), encode(anchor))
        wait_for(lambda: ok_anchor in a.acks and bad_anchor in a.acks, 10, "anchor PUBACKs")
        assert not a.acks[ok_anchor].is_failure
        assert a.acks[bad_anchor].value == NOT_AUTHORIZED

        # mosquitto grants any subscription and filters each delivery by the read ACL:
        # a site subscribed to everything still receives only its own commands.
        a.client.subscribe(topics.command_filter("site-b"), qos=1)
        a.client.subscribe(f"{topics.ROOT}/#", qos=1)
        command = CommandPayload(request_id=uuid4(), issued_at=datetime.now(UTC))
        b.client.subscribe(topics.command_filter("site-b"), qos=1)
        time.sleep(0.3)
        central = TestClient(world.broker.port, "central", "central-test-password").start()
        central.publish(topics.command("site-b", "ping"), encode(command))
        central.publish(topics.command("site-a", "ping"), encode(command))
        wait_for(lambda: len(b.messages) == 1, 10, "site-b's own command")
        time.sleep(0.5)
        assert [t for t, _ in a.messages] == [topics.command("site-a", "ping")]
        central.stop()
    finally:
        a.stop()
        b.stop()
    rows = world.central.query("select site from events")
    assert rows == [("site-a",)]
    stats = world.central.stats()
    assert stats["kind:event"] == 1 and stats["rejected"] == 0  # the forged one never came
    assert stats["kind:anchor"] == 1


def test_no_session_takeover_and_wrong_passwords_are_refused(world: MqttWorld) -> None:
    b = TestClient(world.broker.port, "site-b", world.passwords["site-b"], "edge-site-b").start()
    # site-a claims site-b's client id: the broker names each client by its user name, so
    # this does not take over (disconnect) site-b's session.
    a = TestClient(world.broker.port, "site-a", world.passwords["site-a"], "edge-site-b").start()
    try:
        assert a.connected.is_set()
        time.sleep(0.5)
        assert b.connected.is_set() and b.disconnects == 0
    finally:
        a.stop()
        b.stop()
    wrong = TestClient(world.broker.port, "site-a", "not-the-password").start()
    assert wrong.connect_result is not None and wrong.connect_result.is_failure
    wrong.stop()
    anonymous = TestClient(world.broker.port, "", "").start()
    assert anonymous.connect_result is None or anonymous.connect_result.is_failure
    anonymous.stop()


def test_edges_connect_over_tls_and_verify_the_broker(world: MqttWorld, tmp_path: Path) -> None:
    broker = Broker(options=shipped_broker_options(world.admin))
    certs = broker.workdir / "certs"
    make_certs = str(REPO / "scripts" / "make-certs.sh")
    subprocess.run([make_certs, str(certs), "127.0.0.1"], check=True, capture_output=True)
    other = tmp_path / "other-ca"
    subprocess.run([make_certs, str(other)], check=True, capture_output=True)
    chown_to_mosquitto(certs)
    tls_port = free_port()
    tls = [
        f"listener {tls_port} 127.0.0.1",
        f"certfile {certs / 'server.crt'}",
        f"keyfile {certs / 'server.key'}",
        f"cafile {certs / 'ca.crt'}",
        "tls_version tlsv1.2",
    ]
    broker.options = replace(broker.options, extra_config=[*broker.options.extra_config, *tls])
    broker.start()
    try:
        good = _tls_link(world, tls_port, certs / "ca.crt")
        bad = _tls_link(world, tls_port, other / "ca.crt")
        good.start()
        bad.start()
        try:
            assert good.connected.wait(15), broker.log_tail()
            time.sleep(1.0)
            assert not bad.connected.is_set()  # a broker it cannot verify is never trusted
        finally:
            good.stop()
            bad.stop()
    finally:
        broker.close()


def _tls_link(world: MqttWorld, port: int, ca: Path) -> MqttLink:
    settings = MqttConfig(host="127.0.0.1", port=port, tls={"ca_file": ca}, reconnect_max_s=1)
    return MqttLink(settings, "site-a", Credential("site-a", world.passwords["site-a"]), "test")
