"""The integrity part of contract v1: chain links anchored at central, and integrity audits.

Every sealed segment on an edge box carries a link in its camera's SHA-256 chain (see
`fsv_contract.video.segment_link`). The edge sends the links to central in batches
(`AnchorPayload`, topic `fsv/v1/{site}/agent/anchor`, through the outbox), together with the
tombstones of the segments it deleted. Central keeps the chain it was told, so footage
deleted or rewritten on the box afterwards no longer agrees with it. The `audit` command
asks the edge to hash named segment files as they are now on disk.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from fsv_contract.payloads import LEVEL_PATTERN, Level, Payload, UtcDatetime

VERB_AUDIT = "audit"
SHA_PATTERN = r"^[0-9a-f]{64}$"
SEGMENT_PATH_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}/[0-9A-Za-z._/-]{1,200}$"
MAX_LINKS = 500  # per camera and message: ~150 kB of JSON, under the payload limit
MAX_AUDIT_SAMPLES = 100


def _no_dot_dot(value: str) -> str:
    if ".." in value.split("/"):
        raise ValueError("a segment path must not contain '..'")
    return value


SegmentPath = Annotated[
    str,
    Field(pattern=SEGMENT_PATH_PATTERN, description="relative to the storage root"),
    AfterValidator(_no_dot_dot),
]


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class AnchorLink(_Part):
    """One sealed segment: its facts and its chain link (times are UTC epoch seconds)."""

    path: SegmentPath
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=SHA_PATTERN)
    prev_chain: str = Field(pattern=SHA_PATTERN, description="the link this one follows")
    chain: str = Field(pattern=SHA_PATTERN, description="this segment's link")

    @field_validator("end")
    @classmethod
    def _not_before_start(cls, end: float, info: ValidationInfo) -> float:
        # A segment ending before it starts would give the anchored period a false end.
        start = info.data.get("start")
        if start is not None and end < start:
            raise ValueError(f"end {end} is before start {start}")
        return end


class Tombstone(_Part):
    """A segment the edge deleted, and why (`retention`, `segment file missing`, ...)."""

    path: SegmentPath
    chain: str = Field(pattern=SHA_PATTERN)
    removed_at: float = Field(ge=0, description="UTC epoch seconds")
    reason: str = Field(max_length=100)


class CameraAnchor(_Part):
    """A camera's new links since the last anchor, in chain order, and its new tombstones."""

    camera: Level
    links: list[AnchorLink] = Field(default_factory=list, max_length=MAX_LINKS)
    removed: list[Tombstone] = Field(default_factory=list, max_length=MAX_LINKS)
    retention_days: int = Field(90, ge=1, le=3650, description="the camera's retention duty")


class AnchorPayload(Payload):
    """Chain links of sealed segments, batched (QoS 1, through the outbox)."""

    cameras: list[CameraAnchor] = Field(max_length=1024)
    created_at: UtcDatetime


class AuditSample(_Part):
    """One segment central wants proved."""

    camera: str = Field(pattern=LEVEL_PATTERN)
    path: SegmentPath


class AuditArgs(_Part):
    """Hash these segment files as they are on disk now and report each digest."""

    samples: list[AuditSample] = Field(min_length=1, max_length=MAX_AUDIT_SAMPLES)


class AuditProof(_Part):
    """The edge's answer for one sample (a list of these is the reply's `result.proofs`)."""

    camera: str = Field(pattern=LEVEL_PATTERN)
    path: SegmentPath
    state: Literal["present", "missing", "removed", "unreadable"]
    sha256: str | None = Field(None, pattern=SHA_PATTERN)
    bytes: int | None = Field(None, ge=0)
    removed_reason: str | None = Field(None, max_length=100)
    removed_at: float | None = None
    indexed: bool | None = Field(None, description="the edge's index still lists it")


class AuditResult(_Part):
    """The `result` of the reply to `audit`."""

    proofs: list[AuditProof] = Field(max_length=MAX_AUDIT_SAMPLES)
