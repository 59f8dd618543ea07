"""Payload models of contract v1: every payload is a JSON object with a `v` field.

Readers ignore fields they do not know and reject payloads that miss a required field or
carry a wrong type. Adding an optional field keeps `v`; a change that old readers would
misread bumps `v` (and, if old readers must not see it at all, the topic root `fsv/v2`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

CONTRACT_VERSION = 1

LEVEL_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
MEDIA_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"

# Violation kinds the edge raises today; `kind` stays an open string so a new detector
# does not need a contract change.
KNOWN_KINDS = (
    "no_chef_hat",
    "no_mask",
    "smoking",
    "phone_use",
    "rodent",
    "person_in_zone",
    "unattended_station",
    "after_hours_activity",
    "retention_at_risk",
    "outbox_overflow",
)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    Field(description="ISO 8601 with a zone; stored and sent in UTC"),
]
Level = Annotated[str, Field(pattern=LEVEL_PATTERN, description="site/camera id")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
ShortText = Annotated[str, Field(max_length=500)]


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Payload(BaseModel):
    """Base of every payload: unknown fields ignored, NaN refused, immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    v: int = Field(CONTRACT_VERSION, ge=1, le=1000, description="payload schema version")


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class Box(_Part):
    """A detection box, relative to the frame (0..1), top-left origin."""

    x: Unit
    y: Unit
    w: Unit
    h: Unit
    label: str = Field(max_length=64)
    score: Unit
    track_id: int | None = Field(None, ge=0)


class MediaRef(_Part):
    """A snapshot or clip the edge uploads to central by HTTP PUT under the event id."""

    name: str = Field(pattern=MEDIA_NAME_PATTERN, description="e.g. snapshot.jpg, clip.mp4")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex digest of the file")
    bytes: int = Field(ge=0, description="file size")
    content_type: str = Field(pattern=r"^[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+$", max_length=100)
    start: UtcDatetime | None = Field(None, description="first instant a clip covers")
    end: UtcDatetime | None = Field(None, description="last instant a clip covers")


class EventPayload(Payload):
    """A violation (or agent) event; sent at `start` and again at `end` with the clip.

    Central keeps one row per `event_id` and applies the end update once; a duplicate of
    either phase changes nothing. `camera` is empty for events about the agent itself.
    """

    event_id: UUID
    site: Level
    camera: str = Field(max_length=63, pattern=r"^([a-z0-9][a-z0-9_-]{0,62})?$")
    phase: Literal["start", "end"]
    kind: str = Field(pattern=KIND_PATTERN, description="violation kind, e.g. no_chef_hat")
    station: str = Field(max_length=63, description="station of the camera")
    rule: str = Field(max_length=128, description="rule id")
    severity: Literal["info", "warning", "critical"] = "warning"
    start: UtcDatetime
    end: UtcDatetime | None = None
    score: Unit = Field(description="peak score")
    boxes: list[Box] = Field(default_factory=list, max_length=256)
    snapshot: MediaRef | None = None
    clip: MediaRef | None = None
    first_clip: MediaRef | None = Field(
        None,
        description="pre-roll plus the first seconds, sent again with `phase: start` while the "
        "event runs, so inspectors need not wait for its end; the full `clip` follows",
    )
    frame: MediaRef | None = Field(
        None,
        description="the snapshot's frame without boxes or stamps (frame.jpg), so inspectors "
        "label the objects on a clean image; write-once like the snapshot",
    )
    model: str | None = Field(
        None,
        max_length=130,
        description="the model that raised the event: name@version (`file@local` when the "
        "edge runs a model central did not install); null for events about the agent",
    )
    details: dict[str, Any] = Field(default_factory=dict)
    created_at: UtcDatetime | None = Field(
        None, description="when the edge wrote this message to its outbox"
    )

    @model_validator(mode="after")
    def _phase_has_end(self) -> EventPayload:
        if self.phase == "end" and self.end is None:
            raise ValueError("an `end` phase event needs `end`")
        if self.end is not None and self.end < self.start:
            raise ValueError("`end` is before `start`")
        return self


class CameraStatePayload(Payload):
    """Retained online/offline state of one camera."""

    camera: Level
    state: Literal["online", "offline"]
    since: UtcDatetime
    reason: ShortText = ""
    name: str | None = Field(None, max_length=200, description="camera name (edge config)")
    station: str | None = Field(
        None, max_length=63, description="station of the camera (edge config)"
    )


class AgentStatePayload(Payload):
    """Retained availability of an agent; its last will carries `offline`."""

    state: Literal["online", "offline"]
    version: str = Field("", max_length=64)
    started_at: UtcDatetime | None = None
    since: UtcDatetime | None = None


class LaneStats(_Part):
    """A camera's recorded sub stream (its lane `<camera>--sub`) in a heartbeat."""

    state: Literal["online", "offline", "unknown"] = "unknown"
    fps: float | None = Field(None, ge=0)
    bitrate_bps: float | None = Field(None, ge=0)
    last_segment_end: UtcDatetime | None = None
    reason: str | None = Field(
        None, max_length=200, description="why the sub stream is not recorded now (offline only)"
    )


class CameraStats(_Part):
    """Per-camera figures in a heartbeat."""

    camera: Level
    state: Literal["online", "offline", "unknown"] = "unknown"
    fps: float | None = Field(None, ge=0)
    bitrate_bps: float | None = Field(None, ge=0)
    last_segment_end: UtcDatetime | None = None
    days_held: float | None = Field(None, ge=0)
    model: str | None = Field(
        None, max_length=130, description="the model the camera's detection runs: name@version"
    )
    sub: LaneStats | None = Field(
        None, description="the sub stream's recorder, while the sub stream is recorded"
    )


UplinkClass = Literal["live", "control", "evidence", "archive", "bulk"]


class UplinkClassUse(_Part):
    """One traffic class of the edge's uplink budget in a heartbeat."""

    name: UplinkClass = Field(
        description="live (live/replay a regulator watches) > control (commands, events) > "
        "evidence (alert media, exports) > archive > bulk"
    )
    bps: float = Field(0.0, ge=0, description="bits/s this class sent since the last heartbeat")
    waiting: int = Field(0, ge=0, description="senders of this class waiting for budget now")
    backlog_bytes: int = Field(0, ge=0, description="bytes this class still has to send")


class StreamRate(_Part):
    """A live stream's bitrate as the edge reads it (what live view of it would cost)."""

    camera: Level
    stream: Literal["sub", "main"]
    bps: float = Field(ge=0)


class UplinkStats(_Part):
    """The edge's one uplink budget: its size, use per class and backlog."""

    budget_bps: float | None = Field(None, ge=0, description="bits/s; null: not limited")
    classes: list[UplinkClassUse] = Field(default_factory=list, max_length=8)
    watching: int = Field(0, ge=0, description="live/replay uplinks open now")
    archive_paused: bool = Field(False, description="archive transfer waits for viewers")
    archive_backlog_segments: int = Field(0, ge=0)
    streams: list[StreamRate] = Field(default_factory=list, max_length=2048)


class RuleStatus(_Part):
    """Whether one detection rule of a camera can fire with the model it runs."""

    rule: Level
    kind: str = Field(max_length=64, description="the violation kind the rule reports")
    status: Literal["working", "partial", "blind"]
    reason: ShortText = ""


class CameraDetectionStatus(_Part):
    """A camera's detection in a heartbeat: its model and what each rule can see."""

    camera: Level
    model: str | None = Field(None, max_length=200, description="model file name")
    error: ShortText | None = Field(None, description="why detection is off, if it is")
    rules: list[RuleStatus] = Field(default_factory=list, max_length=256)
    fps: float | None = Field(None, ge=0, description="frames analysed per second")
    lag_s: float | None = Field(
        None, ge=0, description="capture to detections ready, last analysed frame"
    )
    lag_max_s: float | None = Field(None, ge=0, description="the longest such lag since start")
    frames_dropped: int = Field(
        0, ge=0, description="frames dropped since start because analysis fell behind"
    )


class ShadowClass(_Part):
    """One class of a shadow comparison: boxes both models found, or only one of them."""

    name: str = Field(max_length=64)
    matched: int = Field(0, ge=0, description="same class, IoU >= 0.5 on the same frame")
    only_current: int = Field(0, ge=0, description="found by the running model only")
    only_shadow: int = Field(0, ge=0, description="found by the shadow model only")


class ShadowStats(_Part):
    """A shadow model's agreement with the running one on a camera, over one UTC day."""

    camera: Level
    model: str = Field(max_length=130, description="the shadow model: name@version")
    current: str | None = Field(None, max_length=130, description="the running model")
    day: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="UTC day the counts cover")
    frames: int = Field(0, ge=0, description="frames both models ran on")
    errors: int = Field(0, ge=0, description="frames the shadow model failed on")
    classes: list[ShadowClass] = Field(default_factory=list, max_length=256)


class HeartbeatPayload(Payload):
    """Periodic health of an agent (QoS 0: a lost one is replaced by the next)."""

    ts: UtcDatetime
    uptime_s: float = Field(ge=0)
    disk_free_bytes: int = Field(ge=0)
    disk_total_bytes: int = Field(ge=0)
    retention_days_available: float | None = Field(
        None, ge=0, description="days of recording the disk can hold at the current rate"
    )
    retention_at_risk: bool = False
    cpu_percent: float = Field(ge=0)
    memory_percent: float | None = Field(None, ge=0, le=100)
    outbox_pending: int = Field(0, ge=0)
    media_pending: int = Field(0, ge=0)
    cameras: list[CameraStats] = Field(default_factory=list, max_length=1024)
    uplink_bps: float | None = Field(
        None, ge=0, description="video pushed to central (live, replay, export), bits/s"
    )
    uplink: UplinkStats | None = Field(
        None, description="the uplink budget, its use per class and backlog (optional)"
    )
    detection: list[CameraDetectionStatus] | None = Field(
        None, max_length=1024, description="per camera: model and rule capability (optional)"
    )
    shadow: list[ShadowStats] | None = Field(
        None,
        max_length=1024,
        description="per camera running a shadow model: today's comparison with the running "
        "model (the shadow raises no alerts)",
    )


class CommandPayload(Payload):
    """A command from central; the verb is in the topic, the answer goes to reply/{id}."""

    request_id: UUID
    args: dict[str, Any] = Field(default_factory=dict)
    issued_at: UtcDatetime
    expires_at: UtcDatetime | None = Field(None, description="ignore the command after this")


class ReplyPayload(Payload):
    """The edge's answer to one command."""

    request_id: UUID
    verb: str = Field(max_length=63)
    ok: bool
    result: dict[str, Any] = Field(default_factory=dict)
    error: ShortText | None = None
    finished_at: UtcDatetime
