"""The video part of contract v1: command verbs and arguments, the media uplink, clip manifests.

Central asks an edge for video with an MQTT command (`fsv/v1/{site}/cmd/{verb}`; times in
the arguments are ISO 8601 UTC like every contract time); the edge
answers by opening a WebSocket to central (it never accepts connections itself) and pushing
binary frames: a fixed header (`FrameHeader`) followed by an fMP4 init segment, fMP4
fragments, or chunks of an exported file. Text frames carry JSON control messages.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fsv_contract.codec import loads_finite
from fsv_contract.errors import InvalidPayload
from fsv_contract.payloads import LEVEL_PATTERN, UtcDatetime

# Command verbs (topic level `cmd/{verb}`).
VERB_STREAM_START = "stream_start"
VERB_STREAM_STOP = "stream_stop"
VERB_RECORDINGS = "recordings"
VERB_EXPORT = "export_clip"
VERB_THUMBNAIL = "thumbnail"
VIDEO_VERBS = (VERB_STREAM_START, VERB_STREAM_STOP, VERB_RECORDINGS, VERB_EXPORT, VERB_THUMBNAIL)

# Where the edge connects (relative to its configured central_url) and how it proves who it is.
UPLINK_PATH = "/api/v1/video/uplink"
TOKEN_HEADER = "X-FSV-Uplink-Token"
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{32,64}$"

MAX_EXPORT_S = 3600.0  # one clip covers at most an hour
MAX_RANGE_QUERY_S = 2 * 86400.0
GENESIS = "0" * 64

Stream = Literal["sub", "main"]
Mode = Literal["live", "replay"]


class _Args(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class StreamStartArgs(_Args):
    """`stream_start`: open an uplink for one camera's live stream or its recording."""

    token: str = Field(pattern=TOKEN_PATTERN, description="one-time uplink token")
    camera: str = Field(pattern=LEVEL_PATTERN)
    stream: Stream = Field(
        "sub",
        description="live: the camera stream; replay: main, or sub for the recording of the "
        "camera's sub lane `<camera>--sub` (edges from before sub lane replay refuse sub)",
    )
    mode: Mode = "live"
    start: UtcDatetime | None = Field(None, description="replay: the time to start at")
    speed: float = Field(1.0, ge=0.25, le=16.0, description="replay pace, x real time")
    expires_at: UtcDatetime | None = Field(None, description="ignore the command after this")

    @model_validator(mode="after")
    def _replay_has_start(self) -> StreamStartArgs:
        if self.mode == "replay" and self.start is None:
            raise ValueError("a replay needs `start`")
        return self


class StreamStopArgs(_Args):
    """`stream_stop`: close the uplink opened with this token."""

    token: str = Field(pattern=TOKEN_PATTERN)


class RecordingsArgs(_Args):
    """`recordings`: the recorded ranges and gaps of a camera in [start, end)."""

    camera: str = Field(pattern=LEVEL_PATTERN)
    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _bounded(self) -> RecordingsArgs:
        if not 0 < (self.end - self.start).total_seconds() <= MAX_RANGE_QUERY_S:
            raise ValueError(f"end must follow start by at most {MAX_RANGE_QUERY_S:.0f} s")
        return self


class ExportArgs(_Args):
    """`export_clip`: cut [start, end) of a camera's recording into one MP4 and upload it."""

    token: str = Field(pattern=TOKEN_PATTERN)
    camera: str = Field(pattern=LEVEL_PATTERN)
    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _bounded(self) -> ExportArgs:
        if not 0 < (self.end - self.start).total_seconds() <= MAX_EXPORT_S:
            raise ValueError(f"end must follow start by at most {MAX_EXPORT_S:.0f} s")
        return self


class ThumbnailArgs(_Args):
    """`thumbnail`: a small JPEG of the keyframe at or before `at`, uploaded at low priority.

    The edge connects to the uplink with `token` and sends the JPEG as one `file` frame,
    then `end` (`done`, or the reason there is none); class `bulk` of the uplink budget.
    """

    token: str = Field(pattern=TOKEN_PATTERN)
    camera: str = Field(pattern=LEVEL_PATTERN)
    at: UtcDatetime


# The argument model of each video verb (merged into fsv_contract.commands.COMMAND_ARGS).
COMMAND_ARGS: dict[str, type[_Args]] = {
    VERB_STREAM_START: StreamStartArgs,
    VERB_STREAM_STOP: StreamStopArgs,
    VERB_RECORDINGS: RecordingsArgs,
    VERB_EXPORT: ExportArgs,
    VERB_THUMBNAIL: ThumbnailArgs,
}


# --- the uplink's binary frames --------------------------------------------------------------


class FrameKind(IntEnum):
    """What follows the header of a binary frame."""

    INIT = 1  # an fMP4 init segment (ftyp + moov); a new one resets the media timeline
    FRAGMENT = 2  # one fMP4 fragment (moof + mdat)
    FILE = 3  # a chunk of an exported file, in order


class FrameFlags(IntFlag):
    """Bits of a frame header."""

    NONE = 0
    KEYFRAME = 1  # the fragment starts with a sync sample: a decoder may start here


_HEADER = struct.Struct("!BBxxqIq")
HEADER_SIZE = _HEADER.size


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The 24-byte header of every binary uplink frame.

    `media_us` is the decode time of the fragment's first sample on the session's media
    timeline (0 at the first fragment); `wall_ms` its capture time in UTC (0 if unknown).
    """

    kind: FrameKind
    flags: FrameFlags = FrameFlags.NONE
    media_us: int = 0
    duration_us: int = 0
    wall_ms: int = 0

    @property
    def keyframe(self) -> bool:
        """True if a decoder can start at this fragment."""
        return bool(self.flags & FrameFlags.KEYFRAME)

    def pack(self, payload: bytes) -> bytes:
        """The frame bytes: header then payload."""
        head = _HEADER.pack(
            int(self.kind), int(self.flags), self.media_us, self.duration_us, self.wall_ms
        )
        return head + payload


def unpack_frame(data: bytes) -> tuple[FrameHeader, memoryview]:
    """Split a binary frame into its header and payload; InvalidPayload if malformed."""
    if len(data) < HEADER_SIZE:
        raise InvalidPayload(f"uplink frame of {len(data)} bytes is shorter than its header")
    kind, flags, media_us, duration_us, wall_ms = _HEADER.unpack_from(data)
    try:
        header = FrameHeader(FrameKind(kind), FrameFlags(flags & 1), media_us, duration_us, wall_ms)
    except ValueError as e:
        raise InvalidPayload(f"unknown uplink frame kind {kind}") from e
    return header, memoryview(data)[HEADER_SIZE:]


# --- the uplink's control messages (JSON text frames) ----------------------------------------


class Hello(_Args):
    """First text frame of a media uplink: what the fragments will carry."""

    type: Literal["hello"] = "hello"
    camera: str = Field(pattern=LEVEL_PATTERN)
    stream: Stream
    mode: Mode | Literal["export"]
    codec: str = Field(max_length=32, description="FFmpeg codec name: h264, hevc")
    mime: str = Field(max_length=200, description='e.g. video/mp4; codecs="avc1.64001e"')
    width: int = Field(ge=0, le=16384)
    height: int = Field(ge=0, le=16384)
    origin_wall: float | None = Field(None, description="UTC epoch seconds at media time 0")
    speed: float = 1.0
    bitrate_bps: float | None = Field(None, ge=0, description="the camera stream's rate")


class End(_Args):
    """Last text frame of an uplink: why it ends (`done` after a replay or an export)."""

    type: Literal["end"] = "end"
    reason: str = Field(max_length=500)


class Stats(_Args):
    """Periodic uplink figures from the edge."""

    type: Literal["stats"] = "stats"
    sent_bytes: int = Field(ge=0)
    dropped: int = Field(0, ge=0, description="packets dropped because the link was slow")


def control_json(message: BaseModel) -> str:
    """The text frame of a control message."""
    return message.model_dump_json()


def parse_control(text: str) -> Hello | End | Stats | ClipManifest | None:
    """Parse a text frame; None for a type this version does not know (ignored)."""
    try:
        obj = loads_finite(text)
    except InvalidPayload:
        raise
    except ValueError as e:
        raise InvalidPayload(f"control frame is not JSON: {str(e)[:200]}") from e
    if not isinstance(obj, dict):
        raise InvalidPayload("control frame must be a JSON object")
    models: dict[str, type[Hello | End | Stats | ClipManifest]] = {
        "hello": Hello,
        "end": End,
        "stats": Stats,
        "manifest": ClipManifest,
    }
    model = models.get(str(obj.get("type")))
    if model is None:
        return None
    try:
        return model.model_validate(obj)
    except ValueError as e:
        raise InvalidPayload(f"bad {obj.get('type')} frame: {str(e)[:300]}") from e


# --- exported clips ---------------------------------------------------------------------------


class ManifestSegment(_Args):
    """One recorded segment a clip was cut from, with its link in the camera's hash chain."""

    path: str = Field(max_length=300)
    start: float
    end: float
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    prev_chain: str = Field(pattern=r"^[0-9a-f]{64}$")
    chain: str = Field(pattern=r"^[0-9a-f]{64}$")
    used: bool = Field(True, description="False: listed only to keep the chain unbroken")


class ClipFile(_Args):
    """The exported MP4 itself."""

    name: str = Field(max_length=200)
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Signature(_Args):
    """Central's signature over the manifest without this field (canonical JSON)."""

    alg: Literal["ed25519"] = "ed25519"
    key_id: str = Field(max_length=64, description="SHA-256 prefix of the public key")
    value: str = Field(max_length=200, description="base64")


class ClipManifest(_Args):
    """What proves an exported clip: its digest and the chained segments it was cut from."""

    type: Literal["manifest"] = "manifest"
    v: int = 1
    site: str = Field(pattern=LEVEL_PATTERN)
    camera: str = Field(pattern=LEVEL_PATTERN)
    requested_start: float
    requested_end: float
    clip_start: float = Field(description="UTC of the clip's first frame (a keyframe)")
    clip_end: float
    codec: str = Field(max_length=32)
    file: ClipFile
    segments: list[ManifestSegment] = Field(max_length=10_000)
    created_at: float
    signature: Signature | None = None

    def signed_bytes(self) -> bytes:
        """The canonical bytes a signature covers: the manifest without `signature`."""
        data = self.model_dump(mode="json", exclude={"signature"})
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def segment_link(prev_chain: str, camera: str, segment: ManifestSegment) -> str:
    """The chain link of a segment: SHA-256 over the previous link and the segment's facts.

    Must match the edge index's chain_hash() byte for byte (a test checks both).
    """
    facts = json.dumps(
        [
            prev_chain,
            camera,
            segment.path,
            f"{segment.start:.6f}",
            f"{segment.end:.6f}",
            int(segment.bytes),
            segment.sha256,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(facts.encode()).hexdigest()


def chain_problems(manifest: ClipManifest) -> list[str]:
    """Breaks in the manifest's segment chain; [] when every link holds."""
    problems: list[str] = []
    previous: ManifestSegment | None = None
    for seg in manifest.segments:
        if segment_link(seg.prev_chain, manifest.camera, seg) != seg.chain:
            problems.append(f"{seg.path}: chain link does not match the segment's facts")
        if previous is not None and seg.prev_chain != previous.chain:
            problems.append(f"{seg.path}: does not link to {previous.path}")
        previous = seg
    if not manifest.segments:
        problems.append("the manifest lists no segments")
    return problems
