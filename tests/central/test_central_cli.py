"""`central-server` commands: check-config, add-site, init-broker, status."""

from pathlib import Path

import pytest
import yaml

from central.cli import main
from central.ingest.site_auth import SitePasswords
from edge_agent.config import parse_config as parse_edge_config


def write_config(tmp_path: Path) -> Path:
    config = {
        "data_dir": str(tmp_path / "data"),
        "mqtt": {"password_file": str(tmp_path / "central-password")},
        "broker": {
            "password_file": str(tmp_path / "broker" / "passwd"),
            "acl_file": str(tmp_path / "broker" / "acl"),
            "public_host": "mqtt.example.org",
        },
    }
    path = tmp_path / "central.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_check_config_reports_ok_and_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", str(write_config(tmp_path))]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("data_dir: /x\nmqtt: {port: 0}\n")
    assert main(["check-config", str(bad)]) == 2
    assert "bad.yaml:2: mqtt.port" in capsys.readouterr().err


def test_init_broker_add_site_and_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert main(["init-broker", "-c", str(config)]) == 0
    assert "password in" in capsys.readouterr().out
    central_password = (tmp_path / "central-password").read_text().strip()
    passwords = SitePasswords(tmp_path / "broker" / "passwd")
    assert passwords.verify("central", central_password)
    assert "user central" in (tmp_path / "broker" / "acl").read_text()

    assert main(["add-site", "canteen-7", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    password = out.split("password ", 1)[1].split()[0]
    assert passwords.verify("canteen-7", password)
    assert "host: mqtt.example.org" in out and "username: canteen-7" in out

    # The enrolment files for the edge box: config sections the edge config accepts, and
    # the login in a file only its owner can read.
    out_dir = tmp_path / "enrol"
    assert main(["add-site", "canteen-8", "-c", str(config), "--out", str(out_dir)]) == 0
    capsys.readouterr()
    section = yaml.safe_load((out_dir / "canteen-8.edge.yaml").read_text())
    secret_file = out_dir / "canteen-8.credentials.yaml"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    secret = yaml.safe_load(secret_file.read_text())
    assert passwords.verify("canteen-8", secret["mqtt"]["password"])
    edge = parse_edge_config(
        yaml.safe_dump({**section, "storage": {"path": str(tmp_path / "rec")}})
    )
    assert edge.site_id == "canteen-8" and edge.mqtt is not None
    assert edge.mqtt.host == "mqtt.example.org" and edge.mqtt.credential == "mqtt"

    assert main(["add-site", "Bad/Site", "-c", str(config)]) == 1
    assert "not a valid topic level" in capsys.readouterr().err

    assert main(["status", "-c", str(config), "--json"]) == 0
    status = yaml.safe_load(capsys.readouterr().out)
    assert status["ingest"]["received"] == 0 and status["agents"] == []
