"""Site accounts: mosquitto_passwd file, ACL, enrolment snippet the edge config accepts."""

import base64
import hashlib
from pathlib import Path

import pytest
import yaml

from central.config import BrokerAdminConfig
from central.errors import BrokerAdminError
from central.ingest.accounts import enrolment, issue_site_credentials, render_acl
from central.ingest.site_auth import SitePasswords, check_mosquitto_hash
from edge_agent.config import parse_config


@pytest.fixture
def broker(tmp_path: Path) -> BrokerAdminConfig:
    return BrokerAdminConfig(
        password_file=tmp_path / "broker" / "passwd",
        acl_file=tmp_path / "broker" / "acl",
        public_host="mqtt.example.org",
        ca_file=Path("/etc/edge-agent/fsv-ca.crt"),
        central_url="https://central.example.org",
        reload_command=["touch", str(tmp_path / "reloaded")],
    )


def test_add_site_writes_a_verifiable_password_and_the_acl(
    broker: BrokerAdminConfig, tmp_path: Path
) -> None:
    a = issue_site_credentials(broker, "site-a", "central")
    b = issue_site_credentials(broker, "site-b", "central")
    passwords = SitePasswords(broker.password_file)
    assert passwords.verify("site-a", a.password) and passwords.verify("site-b", b.password)
    assert not passwords.verify("site-a", b.password)
    again = issue_site_credentials(broker, "site-a", "central")  # a reset
    assert not passwords.verify("site-a", a.password) and passwords.verify("site-a", again.password)
    assert broker.acl_file.read_text() == render_acl("central")
    assert a.password not in repr(a)
    assert (tmp_path / "reloaded").exists()


@pytest.mark.parametrize("site", ["central", "Site-A", "a/b", "+", ""])
def test_bad_or_reserved_site_ids_are_refused(broker: BrokerAdminConfig, site: str) -> None:
    with pytest.raises(BrokerAdminError):
        issue_site_credentials(broker, site, "central")


def test_acl_limits_sites_to_their_own_topics() -> None:
    acl = render_acl("central")
    assert "pattern write fsv/v1/%u/camera/+/event" in acl
    assert "pattern read fsv/v1/%u/cmd/+" in acl
    assert "user central\ntopic read fsv/v1/+/agent/+" in acl
    assert "pattern read fsv/v1/%u/#" not in acl and "pattern write fsv/v1/+" not in acl


def test_enrolment_snippet_is_a_valid_edge_config_section(broker: BrokerAdminConfig) -> None:
    creds = issue_site_credentials(broker, "site-a", "central")
    text = enrolment(broker, creds)
    config_part, secret_part = text.split("# add to the edge's credentials file")
    edge = yaml.safe_load(config_part)
    edge.update({"site_id": "site-a", "storage": {"path": "/tmp/x"}})
    parsed = parse_config(yaml.safe_dump(edge))
    assert parsed.mqtt is not None and parsed.mqtt.host == "mqtt.example.org"
    assert parsed.mqtt.tls is not None and parsed.mqtt.tls.ca_file == broker.ca_file
    assert parsed.central_url == "https://central.example.org"
    secret = yaml.safe_load(secret_part.split("\n", 1)[1])
    assert secret == {"mqtt": {"username": "site-a", "password": creds.password}}


def test_legacy_and_malformed_hashes() -> None:
    # mosquitto 1.x `$6$`: base64(sha512(password + salt)) with a base64 salt.
    salt = b"0123456789abcdef"
    digest = hashlib.sha512(b"pw" + salt).digest()
    entry = f"$6${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert check_mosquitto_hash(entry, "pw") and not check_mosquitto_hash(entry, "px")
    for bad in ("", "$7$x$y$z", "$9$a$b", "$7$101$!!!$???"):
        assert not check_mosquitto_hash(bad, "pw")
