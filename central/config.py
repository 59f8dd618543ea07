"""Central configuration: pydantic sections, YAML loading and errors located by file and line.

Secrets never live in the YAML: central's MQTT password comes from the environment
(`CENTRAL_MQTT_PASSWORD`) or a file named here (e.g. a systemd credential).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from central.archive.settings import ArchiveConfig
from central.errors import ConfigError
from central.settings import PushConfig, VideoQuotaConfig, WebConfig

PASSWORD_ENV = "CENTRAL_MQTT_PASSWORD"
SYSTEMD_PASSWORD = "mqtt-password"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpConfig(_Section):
    """Where central's HTTP API listens (put a TLS reverse proxy in front of it)."""

    host: str = Field("127.0.0.1", description="listen address")
    port: int = Field(8080, ge=0, le=65535, description="listen port (0: any free port)")


class MqttTlsConfig(_Section):
    """TLS towards the broker; its certificate is always verified."""

    ca_file: Path | None = Field(None, description="CA of the broker; default: system CAs")
    cert_file: Path | None = None
    key_file: Path | None = None


class MqttConfig(_Section):
    """Central's own connection to the broker (reads every site, sends commands)."""

    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(1883, ge=1, le=65535)
    tls: MqttTlsConfig | None = Field(None, description="null: plain TCP on the loopback")
    username: str = Field("central", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    password_file: Path | None = Field(
        None, description=f"file holding the password; default ${PASSWORD_ENV}"
    )
    client_id: str = Field("central", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    keepalive_s: int = Field(30, ge=5, le=3600)
    session_expiry_s: int = Field(
        30 * 86400, ge=60, le=0xFFFFFFFF, description="how long the broker queues for us"
    )
    reconnect_max_s: float = Field(30.0, ge=1, le=600)
    live_lane: bool = Field(
        True,
        description="read the events' live lane on a second connection ({username}.live, "
        "created by init-broker), so a live alert never waits behind a flushed backlog",
    )


class BrokerAdminConfig(_Section):
    """The broker files `central-server add-site` maintains, and what edges are told."""

    password_file: Path = Field(description="mosquitto password_file")
    acl_file: Path = Field(description="mosquitto acl_file (rewritten from the template)")
    mosquitto_passwd: str = Field("mosquitto_passwd", description="the tool that hashes")
    reload_command: list[str] | None = Field(
        None, description="run after a change, e.g. [systemctl, reload, mosquitto]"
    )
    public_host: str = Field("central.example.org", description="broker host edges dial")
    public_port: int = Field(8883, ge=1, le=65535)
    ca_file: Path | None = Field(None, description="CA edges verify the broker with")
    central_url: str = Field(
        "https://central.example.org", pattern=r"^https?://[^/\s]+(/\S*)?$",
        description="base URL edges upload media to",
    )  # fmt: skip


class IngestConfig(_Section):
    """Batching of MQTT messages into the database."""

    batch_max: int = Field(2000, ge=1, le=100_000, description="messages per transaction")


class MediaConfig(_Section):
    """Snapshots and clips uploaded by edges."""

    dir: Path | None = Field(None, description="default: <data_dir>/media")
    max_bytes: int = Field(512 << 20, ge=1, description="larger uploads are refused (413)")
    uploads_per_site: int = Field(
        4,
        ge=1,
        le=64,
        description="uploads (media and archive) one site may send at once; more get 429 "
        "(an edge sends one or two at a time)",
    )


class IntegrityConfig(_Section):
    """Integrity audits: central asks each site to prove random anchored segments."""

    audit_interval_s: float = Field(
        6 * 3600.0, ge=60, le=30 * 86400, description="how often each site is audited"
    )
    samples_per_camera: int = Field(3, ge=1, le=50, description="segments proved per camera")
    reply_timeout_s: float = Field(
        900.0, ge=10, le=86400, description="an audit not answered by then is 'unanswered'"
    )
    poll_s: float = Field(2.0, gt=0, le=60, description="how often audit requests are looked at")
    anchor_margin_days: float = Field(
        30.0, ge=0, le=3650,
        description="anchored chain links are pruned this many days after their retention date",
    )  # fmt: skip


class ClusterConfig(_Section):
    """Several central nodes on one database (see central.nodes and docs/central.md)."""

    node_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,20}$",
        description="this node's name, unique among the nodes (required with nodes > 1: it "
        "names the node's broker session and leads its uplink tokens); default: host-pid",
    )
    nodes: int = Field(1, ge=1, le=64, description="how many central nodes share the database")
    shared_ingest: bool | None = Field(
        None,
        description="read the sites through an MQTT 5 shared subscription ($share/central/...) "
        "so each message goes to one node; default: when nodes > 1",
    )
    lease_s: float = Field(
        15.0, ge=2, le=600, description="a singleton's lease; another node takes over after it"
    )
    renew_s: float = Field(5.0, gt=0, le=300, description="how often a held lease is renewed")

    @model_validator(mode="after")
    def _consistent(self) -> ClusterConfig:
        if self.renew_s >= self.lease_s:
            raise ValueError("renew_s must be shorter than lease_s")
        if (self.shared or self.nodes > 1) and self.node_id is None:
            raise ValueError("several nodes need node_id (their broker sessions, uplink routes)")
        return self

    @property
    def shared(self) -> bool:
        """Whether ingest reads through the shared subscription."""
        return self.shared_ingest if self.shared_ingest is not None else self.nodes > 1


class CentralConfig(_Section):
    """The whole central configuration file."""

    data_dir: Path = Field(description="folder of central.db and media")
    database: str | None = Field(
        None,
        description="postgresql://user:password@host:port/dbname for a PostgreSQL server, "
        "or the path of a SQLite file; default: data_dir/central.db (SQLite)",
    )
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    http: HttpConfig = HttpConfig()
    mqtt: MqttConfig = MqttConfig()
    broker: BrokerAdminConfig | None = Field(None, description="needed by add-site only")
    ingest: IngestConfig = IngestConfig()
    media: MediaConfig = MediaConfig()
    integrity: IntegrityConfig = IntegrityConfig()
    web: WebConfig = WebConfig()
    push: PushConfig = PushConfig()
    video_quota: VideoQuotaConfig = VideoQuotaConfig()
    archive: ArchiveConfig = Field(
        ArchiveConfig(), description="the city archive: footage per site policy"
    )
    cluster: ClusterConfig = Field(ClusterConfig(), description="several nodes, one database")

    @field_validator("database")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None or "://" not in value:
            return value  # a SQLite file
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(
                f"unknown database scheme {parts.scheme!r}: use postgresql://... or a file path"
            )
        try:
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError as e:
            raise ValueError(f"bad port in the database URL: {e}") from e
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError("a PostgreSQL URL needs a host and a database name")
        return value

    @property
    def database_path(self) -> Path:
        """The SQLite file (when `database` is not a PostgreSQL URL)."""
        if self.database is not None and "://" not in self.database:
            return Path(self.database)
        return self.data_dir / "central.db"

    @property
    def database_url(self) -> str | Path:
        """What CentralDatabase opens: the PostgreSQL URL, or the SQLite file."""
        if self.database is not None and "://" in self.database:
            return self.database
        return self.database_path

    @property
    def archive_dir(self) -> Path:
        """Where the city archive keeps footage and archive.db."""
        return self.archive.path if self.archive.path is not None else self.data_dir / "archive"

    @property
    def media_dir(self) -> Path:
        """Where uploaded media files live."""
        return self.media.dir if self.media.dir is not None else self.data_dir / "media"


def mqtt_password(config: MqttConfig, environ: dict[str, str] | None = None) -> str:
    """Central's MQTT password: the named file, the systemd credential, or the environment."""
    env = os.environ if environ is None else environ
    path = config.password_file
    if path is None and env.get("CREDENTIALS_DIRECTORY"):
        candidate = Path(env["CREDENTIALS_DIRECTORY"]) / SYSTEMD_PASSWORD
        path = candidate if candidate.exists() else None
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"cannot read the MQTT password file {path}: {e.strerror}") from e
    if PASSWORD_ENV in env:
        return env[PASSWORD_ENV]
    raise ConfigError(f"no MQTT password: set {PASSWORD_ENV} or mqtt.password_file")


def load_config(path: str | Path) -> CentralConfig:
    """Read and validate a YAML file; ConfigError lists every problem with file:line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read file: {e.strerror or e}") from e
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> CentralConfig:
    """Validate YAML text; ConfigError with `file:line: field.path: message` lines."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping of settings")
    try:
        return CentralConfig.model_validate(data)
    except ValidationError as e:
        lines = "\n".join(f"  - {p}" for p in _locate(e, node, source))
        raise ConfigError(f"invalid configuration {source}:\n{lines}") from e


def _locate(error: ValidationError, root: yaml.Node | None, source: str) -> list[str]:
    problems = []
    for err in error.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc)
        line = _line_of(root, loc)
        message = {
            "extra_forbidden": "unknown field (see configs/central.example.yaml)",
            "missing": "required field is missing",
        }.get(err["type"], err["msg"])
        prefix = f"{source}:{line}" if line is not None else source
        problems.append(f"{prefix}: {where or '(top level)'}: {message}")
    return problems


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """1-based line of the deepest YAML node that `loc` reaches."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line
