"""Edge agent configuration: pydantic models, YAML loading and located error reports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from edge_agent.detection.settings import CameraDetectionConfig, DetectionConfig
from edge_agent.errors import ConfigError
from edge_agent.mqtt.settings import MqttConfig
from edge_agent.uplink.settings import UplinkConfig
from fsv_contract.lanes import MAX_LANE_ID, SUB_SUFFIX, split_lane

IDENT = r"^[a-z0-9][a-z0-9_-]{0,62}$"
Ident = Annotated[str, Field(pattern=IDENT, description="lower-case letters, digits, '_' and '-'")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_rtsp_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("rtsp", "rtsps"):
        raise ValueError("must be an rtsp:// or rtsps:// URL")
    if not parts.hostname:
        raise ValueError("has no host")
    if parts.username or parts.password:
        raise ValueError(
            "must not carry credentials; name a `credential` instead "
            "(environment variables or the credentials file)"
        )
    return value


class StorageConfig(_Model):
    """Where and how segments are written, and the disk watermarks retention enforces."""

    path: Path = Field(description="folder that holds {camera}/{YYYY-MM-DD}/{HH}/{MM.SS}.mp4")
    segment_seconds: int = Field(60, ge=5, le=600, description="target segment length")
    hard_min_free_percent: float = Field(
        5.0, ge=0.0, le=50.0, description="below this free space, evict oldest segments first"
    )
    hard_min_free_bytes: int = Field(
        1 << 30, ge=0, description="below this many free bytes, evict oldest segments first"
    )
    risk_margin_days: int = Field(
        7, ge=0, le=90, description="warn while forecast days < retention duty + this margin"
    )
    cleanup_interval_s: float = Field(60.0, gt=0, le=3600)
    reserved_bytes: int = Field(
        128 << 20,
        ge=0,
        description="the last free bytes video never takes: kept for the index, outbox and logs",
    )


class RecorderConfig(_Model):
    """How cameras are read."""

    rtsp_transport: str = Field("tcp", pattern="^(tcp|udp)$")
    open_timeout_s: float = Field(10.0, gt=0, le=120)
    read_timeout_s: float = Field(10.0, gt=0, le=120)
    backoff_initial_s: float = Field(1.0, gt=0, le=60)
    backoff_max_s: float = Field(60.0, gt=0, le=3600)
    restart_limit: int = Field(
        10, ge=1, description="restarts allowed in restart_window_s before the long back-off"
    )
    restart_window_s: float = Field(300.0, gt=0)


class CameraConfig(_Model):
    """One camera at one key station."""

    id: Ident
    name: str = Field(min_length=1, max_length=200)
    station: Ident = Field(description="station preset, e.g. quarantine, kitchen_prep")
    main_url: str = Field(description="main (recording) stream, rtsp:// without credentials")
    sub_url: str | None = Field(None, description="sub stream for live view and detection")
    credential: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_]{1,64}$", description="name of the credential to log in with"
    )
    retention_days: int = Field(90, ge=1, le=3650, description="legal retention duty in days")
    record: bool = True
    record_sub: bool | None = Field(
        None,
        description="also record the sub stream as a lane of its own (`<id>--sub`); "
        "none: when central's archive policy for the site is `sub`",
    )
    enabled: bool = True
    detection: CameraDetectionConfig | None = Field(
        None, description="rule overrides, masks and model of this camera"
    )

    _url_check = field_validator("main_url", "sub_url")(
        lambda v: None if v is None else _check_rtsp_url(v)
    )

    @field_validator("id")
    @classmethod
    def _not_a_lane(cls, value: str) -> str:
        if split_lane(value)[1] != "main":
            raise ValueError(f"must not end with {SUB_SUFFIX!r} (the sub stream's recording lane)")
        return value

    @model_validator(mode="after")
    def _lane_id_fits(self) -> CameraConfig:
        if self.sub_url and len(self.id) > MAX_LANE_ID - len(SUB_SUFFIX):
            raise ValueError(
                f"id: at most {MAX_LANE_ID - len(SUB_SUFFIX)} characters for a camera with "
                f"a sub stream (its recording lane adds {SUB_SUFFIX!r})"
            )
        return self

    @property
    def records_sub(self) -> bool:
        """Whether its sub stream is recorded as a lane of its own (record_sub resolved)."""
        return bool(self.enabled and self.record and self.sub_url and self.record_sub)


class ModelsConfig(_Model):
    """Models central distributes (`install_model`): where they go, whose signature counts."""

    public_key: Path = Field(
        description="central's signing public key, PEM (`central-server model public-key`)"
    )
    dir: Path | None = Field(None, description="installed model files; default <data_dir>/models")
    max_bytes: int = Field(512 << 20, gt=0, description="largest model file accepted")


class EdgeConfig(_Model):
    """The whole edge agent configuration file."""

    site_id: Ident
    timezone: str = Field("Asia/Shanghai", description="IANA zone for schedules and screens")
    storage: StorageConfig
    recorder: RecorderConfig = RecorderConfig()
    credentials_file: Path | None = Field(
        None, description="YAML file of name: {username, password}; default from systemd creds"
    )
    data_dir: Path | None = Field(
        None, description="folder for the agent's databases; default: <storage.path>/.agent"
    )
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    mqtt: MqttConfig | None = Field(None, description="central's broker; none: record only")
    central_url: str | None = Field(
        None,
        pattern=r"^https?://[^/\s]+(/\S*)?$",
        description="central's base URL, for media uploads (https:// outside a test)",
    )
    detection: DetectionConfig = DetectionConfig()
    models: ModelsConfig | None = Field(
        None, description="accept signed models from central; none: install commands refused"
    )
    uplink: UplinkConfig = Field(
        UplinkConfig(), description="the site's upload budget and archive transfer"
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Prometheus /metrics on 127.0.0.1:PORT; none: off"
    )
    cameras: list[CameraConfig] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r}") from e
        return value

    @model_validator(mode="after")
    def _unique_camera_ids(self) -> EdgeConfig:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.id in seen:
                raise ValueError(f"camera id {cam.id!r} is used twice")
            seen.add(cam.id)
        return self

    @property
    def state_dir(self) -> Path:
        """Folder of the agent's own databases."""
        return self.data_dir if self.data_dir is not None else self.storage.path / ".agent"

    def camera(self, camera_id: str) -> CameraConfig:
        """The camera with this id; KeyError if none."""
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise KeyError(camera_id)


def load_config(path: str | Path) -> EdgeConfig:
    """Read and validate a YAML config; raise ConfigError listing every problem with its place."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(str(path), [f"cannot read file: {e.strerror or e}"]) from e
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> EdgeConfig:
    """Validate YAML text; raise ConfigError with `file:line: field.path: message` entries."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(source, [f"{source}: not valid YAML: {e}"]) from e
    if not isinstance(data, dict):
        raise ConfigError(source, [f"{source}: top level must be a mapping of settings"])
    duplicates = _duplicate_ids(data, node, source)
    try:
        config = EdgeConfig.model_validate(data)
    except ValidationError as e:
        problems = format_errors(e, node, source)
        if duplicates:  # the model's own check says it once more, without a line
            problems = [p for p in problems if "is used twice" not in p]
        raise ConfigError(source, sorted(problems + duplicates, key=_line_key)) from e
    if duplicates:
        raise ConfigError(source, duplicates)
    return config


def _duplicate_ids(data: dict[str, Any], node: yaml.Node | None, source: str) -> list[str]:
    """A located error at every camera whose id an earlier camera already uses.

    Checked on the raw YAML, so it is reported together with every other error (the model
    validator only runs once all fields are valid).
    """
    cameras = data.get("cameras")
    if not isinstance(cameras, list):
        return []
    first: dict[str, int] = {}
    problems = []
    for i, cam in enumerate(cameras):
        ident = cam.get("id") if isinstance(cam, dict) else None
        if not isinstance(ident, str):
            continue
        if ident in first:
            line = _line_of(node, ["cameras", i, "id"])
            where = f"{source}:{line}" if line is not None else source
            other = _line_of(node, ["cameras", first[ident], "id"])
            problems.append(
                f"{where}: cameras[{i}].id: camera id {ident!r} is used twice "
                f"(first at cameras[{first[ident]}], line {other})"
            )
        else:
            first[ident] = i
    return problems


def _line_key(problem: str) -> int:
    """Sort key: the line number after `file:`, errors without one first."""
    match = re.match(r"^.*?:(\d+): ", problem)
    return int(match.group(1)) if match else 0


def line_of(text: str, loc: list[Any]) -> int | None:
    """1-based line of the setting at `loc` (e.g. ["cameras", 2, "station"]) in YAML `text`."""
    try:
        return _line_of(yaml.compose(text, Loader=yaml.SafeLoader), loc)
    except yaml.YAMLError:
        return None


def format_errors(error: ValidationError, root: yaml.Node | None, source: str) -> list[str]:
    """Turn pydantic errors into `file:line: a.b[2].c: message` lines."""
    problems = []
    for err in error.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        where = _loc_to_text(loc) or "(top level)"
        line = _line_of(root, loc)
        prefix = f"{source}:{line}" if line is not None else source
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see configs/edge.example.yaml)"
        elif err["type"] == "missing":
            message = "required field is missing"
        problems.append(f"{prefix}: {where}: {message}")
    return problems


def _loc_to_text(loc: list[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """1-based line of the deepest YAML node that `loc` reaches."""
    if node is None:
        return None
    best = node.start_mark.line + 1
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        node = child
        best = node.start_mark.line + 1
    return best


def _child(node: yaml.Node, part: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                found: yaml.Node = (
                    value if not isinstance(value, yaml.ScalarNode) or value.value else key
                )
                return found
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item: yaml.Node = node.value[part]
        return item
    return None


def dump_camera_block(camera: dict[str, Any]) -> str:
    """YAML text of one camera entry, ready to paste under `cameras:`."""
    return yaml.safe_dump([camera], sort_keys=False, allow_unicode=True)


_SECRET_IN_URL = re.compile(r"(rtsps?://)([^/@\s]+)@")


def redact(text: str) -> str:
    """Hide any user:password@ part of RTSP URLs inside a text meant for logs."""
    return _SECRET_IN_URL.sub(r"\1***@", text)
