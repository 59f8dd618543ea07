"""`central-server import`: hundreds of sites from a CSV, one broker reload, real logins."""

from __future__ import annotations

import csv
import sqlite3
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from central.cli import main
from central.ingest.site_auth import SitePasswords
from testbed.mosquitto import Broker, BrokerOptions

SITES = 300


def write_config(tmp_path: Path, database: str | None = None) -> Path:
    config: dict[str, object] = {
        "data_dir": str(tmp_path / "data"),
        "mqtt": {"password_file": str(tmp_path / "central-password")},
        "broker": {
            "password_file": str(tmp_path / "broker" / "passwd"),
            "acl_file": str(tmp_path / "broker" / "acl"),
            "public_host": "mqtt.example.org",
            "reload_command": ["sh", "-c", f"echo reload >> {tmp_path / 'reloads'}"],
        },
    }
    if database is not None:
        config["database"] = database
    path = tmp_path / "central.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def write_csv(path: Path, sites: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["province", "city", "county", "enterprise", "enterprise_type", "site_id",
                      "site_name", "licence_no"])  # fmt: skip
        for i in range(sites):
            out.writerow(["宁夏", "中卫市", f"County {i % 3}", f"食堂 {i}", "canteen",
                          f"canteen-{i}", f"NVR {i}", f"JY{i:06d}"])  # fmt: skip


def count(db: Path | str, sql: str) -> int:
    if isinstance(db, str):
        with psycopg.connect(db) as pg:
            row = pg.execute(sql).fetchone()
            assert row is not None
            return int(row[0])
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


def can_log_in(port: int, user: str, password: str) -> bool:
    done = threading.Event()
    result: list[bool] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        result.append(not getattr(rc, "is_failure", True))
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(20)
    finally:
        client.disconnect()
        client.loop_stop()
    return result[0]


@pytest.mark.databases("sqlite", "postgres")
def test_import_registers_hundreds_of_sites_with_one_reload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], central_db_url: str | None
) -> None:
    config = write_config(tmp_path, central_db_url)
    assert main(["init-broker", "-c", str(config)]) == 0
    (tmp_path / "reloads").unlink()
    sites_csv = tmp_path / "sites.csv"
    write_csv(sites_csv, SITES)
    out = tmp_path / "enrol"
    started = time.monotonic()
    assert main(["import", str(sites_csv), "-c", str(config), "--out", str(out)]) == 0
    took = time.monotonic() - started
    printed = capsys.readouterr().out
    assert f"{SITES} site(s) registered, {SITES + 5} organisation(s) created" in printed
    assert took < 60, took  # seconds, not the minutes of one add-site per site
    assert (tmp_path / "reloads").read_text().splitlines() == ["reload"]
    db = central_db_url or tmp_path / "data" / "central.db"
    assert count(db, "select count(*) from sites") == SITES
    assert count(db, "select count(*) from orgs where level = 'county'") == 3
    assert count(db, "select count(*) from orgs where licence_no = 'JY000042'") == 1

    secret_file = out / "canteen-42.credentials.yaml"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    login = yaml.safe_load(secret_file.read_text())["mqtt"]
    edge = yaml.safe_load((out / "canteen-42.edge.yaml").read_text())
    assert edge["site_id"] == "canteen-42" and edge["mqtt"]["host"] == "mqtt.example.org"
    passwords = SitePasswords(tmp_path / "broker" / "passwd")
    assert passwords.verify("canteen-42", login["password"])
    assert passwords.verify("central", (tmp_path / "central-password").read_text().strip())

    # The broker itself accepts the imported logins (the file's hashes are mosquitto's own).
    broker = Broker(options=BrokerOptions(
        allow_anonymous=False, password_file=tmp_path / "broker" / "passwd",
        acl_file=tmp_path / "broker" / "acl"))  # fmt: skip
    broker.start()
    try:
        assert can_log_in(broker.port, "canteen-42", login["password"])
        assert not can_log_in(broker.port, "canteen-43", login["password"])
    finally:
        broker.close()

    # Again: everything is there already; nothing is reset, the broker is not reloaded.
    assert main(["import", str(sites_csv), "-c", str(config)]) == 0
    assert f"0 site(s) registered, 0 organisation(s) created, {SITES}" in capsys.readouterr().out
    assert (tmp_path / "reloads").read_text().splitlines() == ["reload"]
    assert passwords.verify("canteen-42", login["password"])


def test_a_bad_file_names_its_lines_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "province,city,county,enterprise,enterprise_type,site_id\n"
        "P,C,K,E1,canteen,good-1\n"
        "P,C,K,E2,bakery,good-2\n"
        "P,C,K,E3,canteen,Bad Id\n"
        "P,C,K,E4,canteen,good-1\n"
        "P,C,,E5,canteen,good-5\n",
        encoding="utf-8",
    )
    assert main(["import", str(bad), "-c", str(config)]) == 1
    err = capsys.readouterr().err
    for line in ("line 3: enterprise_type", "line 4: site id 'Bad Id'",
                 "line 5: site id good-1 repeats line 2", "line 6: empty county"):  # fmt: skip
        assert line in err, err
    assert not (tmp_path / "data" / "central.db").exists()
    header_only = tmp_path / "header.csv"
    header_only.write_text("province,city\nP,C\n", encoding="utf-8")
    assert main(["import", str(header_only), "-c", str(config)]) == 1
    assert "lacks column(s): county, enterprise" in capsys.readouterr().err
