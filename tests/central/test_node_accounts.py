"""Each central node's own broker login (USER@NODE): made by init-broker, kept by add-site,
granted central's topics and nothing else, refused for media uploads; on a real Mosquitto
under the shipped `use_username_as_clientid`, two nodes stay connected side by side while a
site can neither log in as a node nor read what the nodes read."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from central.cli import main
from central.config import BrokerAdminConfig
from central.errors import BrokerAdminError
from central.ingest.accounts import (
    central_passwords,
    is_central_account,
    issue_site_credentials,
    node_accounts,
    render_acl,
    set_passwords,
    write_acl,
)
from central.ingest.site_auth import SitePasswords


def write_config(tmp_path: Path, cluster: dict[str, Any] | None = None) -> Path:
    config: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "mqtt": {"password_file": str(tmp_path / "central-password")},
        "broker": {
            "password_file": str(tmp_path / "broker" / "passwd"),
            "acl_file": str(tmp_path / "broker" / "acl"),
        },
    }
    if cluster is not None:
        config["cluster"] = cluster
    path = tmp_path / "central.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_init_broker_makes_node_accounts_that_add_site_keeps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, {"nodes": 3, "node_id": "n1"})
    assert main(["init-broker", "-c", str(config), "--node", "n2"]) == 0
    assert "central@n1, central@n2" in capsys.readouterr().out
    password = (tmp_path / "central-password").read_text().strip()
    passwd = tmp_path / "broker" / "passwd"
    accounts = SitePasswords(passwd)
    for user in ("central", "central.live", "central.cli", "central@n1", "central@n1.live",
                 "central@n2", "central@n2.live"):  # fmt: skip
        assert accounts.verify(user, password), user
    assert node_accounts(passwd, "central") == ["n1", "n2"]
    acl = (tmp_path / "broker" / "acl").read_text()
    assert acl == render_acl("central", ["n1", "n2"])
    assert "user central@n2\ntopic read fsv/v1/+/agent/+" in acl
    assert "user central@n2.live\ntopic read fsv/v1/+/camera/+/live" in acl
    # a site's registration rewrites the ACL from the password file: the nodes stay
    assert main(["add-site", "canteen-7", "-c", str(config)]) == 0
    assert (tmp_path / "broker" / "acl").read_text() == acl
    # a third node later: every account of central gets the new password, none is lost
    assert main(["init-broker", "-c", str(config), "--node", "n3"]) == 0
    new = (tmp_path / "central-password").read_text().strip()
    assert new != password
    assert node_accounts(passwd, "central") == ["n1", "n2", "n3"]
    assert all(accounts.verify(f"central@n{i}", new) for i in (1, 2, 3))
    assert not accounts.verify("central@n1", password)
    assert "user central@n3" in (tmp_path / "broker" / "acl").read_text()


def test_a_single_node_gets_exactly_the_accounts_it_always_had(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    assert main(["init-broker", "-c", str(config)]) == 0
    users = [ln.split(":")[0] for ln in (tmp_path / "broker" / "passwd").read_text().split()]
    assert sorted(users) == ["central", "central.cli", "central.live"]
    assert (tmp_path / "broker" / "acl").read_text() == render_acl("central")
    assert "@" not in render_acl("central")


def test_node_accounts_are_central_accounts_never_sites(tmp_path: Path) -> None:
    assert is_central_account("central", "central@n1")
    assert is_central_account("central", "central@n1.live")
    assert is_central_account("central", "central.cli")
    assert not is_central_account("central", "central-n1")  # a site may be named so
    with pytest.raises(BrokerAdminError):
        central_passwords("central", "pw", ["bad node"])
    admin = BrokerAdminConfig(password_file=tmp_path / "passwd", acl_file=tmp_path / "acl")
    set_passwords(admin, central_passwords("central", "pw", ["n1"]))
    # a site's account that merely looks like a node (no '@') gets no node rules
    issue_site_credentials(admin, "central-n1", "central")
    assert node_accounts(admin.password_file, "central") == ["n1"]
    # media uploads check site logins: central's accounts are refused even with the password
    uploads = SitePasswords(admin.password_file, lambda u: is_central_account("central", u))
    assert not uploads.verify("central@n1", "pw") and not uploads.verify("central", "pw")
    assert SitePasswords(admin.password_file).verify("central@n1", "pw")  # the control


class Client:
    """A paho MQTT 5 client that records its connection result and what it receives."""

    def __init__(self, port: int, user: str, password: str, client_id: str) -> None:
        self.refused: str | None = None
        self.connected = threading.Event()
        self.dropped = threading.Event()
        self.received: list[str] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.dropped.set()
        self.client.on_message = lambda _c, _u, m: self.received.append(m.topic)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self.refused = str(rc)
        else:
            self.connected.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_two_nodes_keep_their_sessions_and_a_site_gets_none_of_their_rights(
    tmp_path: Path, mosquitto_broker_factory: Any
) -> None:
    admin = BrokerAdminConfig(password_file=tmp_path / "passwd", acl_file=tmp_path / "acl")
    set_passwords(admin, central_passwords("central", "node-pw", ["a", "b"]))
    write_acl(admin, "central")
    s1 = issue_site_credentials(admin, "s1", "central").password
    s2 = issue_site_credentials(admin, "s2", "central").password
    broker = mosquitto_broker_factory(
        allow_anonymous=False, password_file=admin.password_file, acl_file=admin.acl_file,
        extra_config=["use_username_as_clientid true"],
    )  # fmt: skip
    clients: list[Client] = []
    try:
        # Both nodes ask for the same client id: the broker makes each its user name.
        a = Client(broker.port, "central@a", "node-pw", "central")
        b = Client(broker.port, "central@b", "node-pw", "central")
        clients += [a, b]
        assert a.connected.wait(10) and b.connected.wait(10), (a.refused, b.refused)
        for node in (a, b):
            node.client.subscribe("$share/central/fsv/v1/+/agent/+", qos=1)
        # A site: with a node's name and its own password, or a guessed one, refused.
        for user, pw in (("central@a", s1), ("central@a", "node"), ("central", s1)):
            probe = Client(broker.port, user, pw, f"probe-{len(clients)}")
            clients.append(probe)
            assert not probe.connected.wait(3), f"broker accepted {user}"
        spy = Client(broker.port, "s1", s1, "s1")
        edge2 = Client(broker.port, "s2", s2, "s2")
        clients += [spy, edge2]
        assert spy.connected.wait(10) and edge2.connected.wait(10)
        spy.client.subscribe([("fsv/v1/+/agent/+", 1), ("fsv/v1/+/cmd/+", 1), ("#", 1)])
        time.sleep(0.5)
        for i in range(20):
            edge2.client.publish(f"fsv/v1/s2/agent/{'event' if i % 2 else 'state'}", b"{}", qos=1)
        a.client.publish("fsv/v1/s2/cmd/hold", b"{}", qos=1)
        spy.client.publish("fsv/v1/s2/agent/event", b"{}", qos=1)  # forged as s2: dropped
        time.sleep(2.0)
        # The group shares s2's messages between the two nodes, both still connected.
        assert len(a.received) + len(b.received) == 20, (a.received, b.received)
        assert a.received and b.received
        assert not a.dropped.is_set() and not b.dropped.is_set()
        assert spy.received == [], spy.received
        log = broker.log_path.read_text(errors="replace")
        assert "already connected, closing old connection" not in log
        assert "as central@a (" in log and "as central@b (" in log
    finally:
        for c in clients:
            c.close()
