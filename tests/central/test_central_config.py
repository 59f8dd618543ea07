"""Central config: the shipped example validates, errors name file, line and field."""

from pathlib import Path

import pytest

from central.config import MqttConfig, load_config, mqtt_password, parse_config
from central.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "configs" / "central.example.yaml"


def test_shipped_example_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.broker is not None and config.mqtt.username == "central"
    assert config.database_path == config.data_dir / "central.db"


def test_errors_are_located() -> None:
    text = "data_dir: /x\nhttp:\n  port: many\n  colour: red\n"
    with pytest.raises(ConfigError) as e:
        parse_config(text, "c.yaml")
    assert "c.yaml:3: http.port:" in str(e.value)
    assert "c.yaml:4: http.colour: unknown field" in str(e.value)
    with pytest.raises(ConfigError, match="data_dir: required field is missing"):
        parse_config("log_level: INFO\n", "c.yaml")


def test_password_comes_from_file_credential_or_environment(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    assert mqtt_password(MqttConfig(password_file=secret), {}) == "from-file"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt-password").write_text("from-systemd")
    assert mqtt_password(MqttConfig(), {"CREDENTIALS_DIRECTORY": str(creds)}) == "from-systemd"
    assert mqtt_password(MqttConfig(), {"CENTRAL_MQTT_PASSWORD": "env"}) == "env"
    with pytest.raises(ConfigError, match="CENTRAL_MQTT_PASSWORD"):
        mqtt_password(MqttConfig(), {})


def test_database_is_a_sqlite_file_or_a_postgresql_url() -> None:
    base = "data_dir: /x\n"
    assert parse_config(base, "c.yaml").database_url == Path("/x/central.db")
    config = parse_config(base + "database: /srv/c.db\n", "c.yaml")
    assert config.database_url == Path("/srv/c.db")
    url = "postgresql://central:pw@db.local:5432/central"
    assert parse_config(base + f"database: {url}\n", "c.yaml").database_url == url
    for bad in ["mysql://h/db", "postgresql://h:port/db", "postgresql:///db", "postgresql://h"]:
        with pytest.raises(ConfigError, match=r"c.yaml:2: database: "):
            parse_config(base + f"database: {bad}\n", "c.yaml")
