"""Encoding payloads for the wire and decoding (topic, bytes) into checked messages."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from fsv_contract import topics
from fsv_contract.errors import InvalidPayload
from fsv_contract.integrity import AnchorPayload
from fsv_contract.payloads import (
    AgentStatePayload,
    CameraStatePayload,
    CommandPayload,
    EventPayload,
    HeartbeatPayload,
    Payload,
    ReplyPayload,
)
from fsv_contract.topics import TopicInfo, TopicKind

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_JSON_DEPTH = 32

MODELS: dict[TopicKind, type[Payload]] = {
    TopicKind.AGENT_STATE: AgentStatePayload,
    TopicKind.HEARTBEAT: HeartbeatPayload,
    TopicKind.AGENT_EVENT: EventPayload,
    TopicKind.ANCHOR: AnchorPayload,
    TopicKind.CAMERA_STATE: CameraStatePayload,
    TopicKind.EVENT: EventPayload,
    TopicKind.COMMAND: CommandPayload,
    TopicKind.REPLY: ReplyPayload,
}


@dataclass(frozen=True)
class Message:
    """A decoded message: where it came from and its validated payload."""

    topic: TopicInfo
    payload: Payload


def encode(payload: Payload) -> bytes:
    """The JSON bytes of a payload (UTC times, UUIDs as strings); InvalidPayload if too big."""
    data = payload.model_dump_json().encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise InvalidPayload(f"payload is {len(data)} bytes, the limit is {MAX_PAYLOAD_BYTES}")
    return data


def decode(topic: str, data: bytes) -> Message:
    """Parse and validate a message; raise InvalidTopic/InvalidPayload saying why not."""
    info = topics.parse(topic)
    obj = _load_json(data)
    model = MODELS[info.kind]
    try:
        payload = model.model_validate(obj)
    except ValidationError as e:
        raise InvalidPayload(_summary(e)) from e
    _check_matches_topic(info, payload)
    return Message(info, payload)


def _load_json(data: bytes | bytearray) -> dict[str, Any]:
    if len(data) > MAX_PAYLOAD_BYTES:
        raise InvalidPayload(f"payload is {len(data)} bytes, the limit is {MAX_PAYLOAD_BYTES}")
    try:
        obj = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFinite as e:
        raise InvalidPayload(str(e)) from e
    except (UnicodeDecodeError, ValueError) as e:
        raise InvalidPayload(f"not JSON: {str(e)[:200]}") from e
    except RecursionError as e:
        raise InvalidPayload(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from e
    if not isinstance(obj, dict):
        raise InvalidPayload(f"payload must be a JSON object, not {type(obj).__name__}")
    _refuse_nul(data, obj)
    # Only a payload with more brackets than the limit can be nested deeper than it.
    if data.count(b"[") + data.count(b"{") > MAX_JSON_DEPTH and _depth(obj) > MAX_JSON_DEPTH:
        raise InvalidPayload(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return obj


class _NonFinite(ValueError):
    """NaN, Infinity or a number too large for a float: not JSON, never accepted."""


def _refuse_constant(name: str) -> Any:
    raise _NonFinite(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(f"{text[:40]} is too large a number")
    return value


def loads_finite(data: str | bytes | bytearray) -> Any:
    """`json.loads` that refuses NaN, Infinity, overflowing numbers and text holding NUL
    (InvalidPayload)."""
    try:
        obj = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFinite as e:
        raise InvalidPayload(str(e)) from e
    _refuse_nul(data, obj)
    return obj


def nul_path(value: Any) -> str | None:
    """Where the first text (a key or a string) holding a NUL character sits inside a
    parsed JSON value ("cameras.0.name"), or None. PostgreSQL cannot store NUL in text, and
    no field of the contract has a use for it."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return where or "value"
        elif isinstance(item, dict):
            for key, child in item.items():
                at = f"{where}.{key}" if where else str(key)
                if "\x00" in key:
                    return at.encode("unicode_escape").decode("ascii")
                stack.append((child, at))
        elif isinstance(item, list):
            stack.extend(
                (child, f"{where}.{i}" if where else str(i)) for i, child in enumerate(item)
            )
    return None


def _refuse_nul(data: str | bytes | bytearray, obj: Any) -> None:
    # Strict JSON has no raw control characters in strings: NUL can only come as \u0000.
    if isinstance(data, str):
        escaped = "\\u0000" in data
    else:
        escaped = b"\\u0000" in data
    if escaped:
        where = nul_path(obj)
        if where is not None:
            raise InvalidPayload(f"{where}: text holds a NUL character (\\u0000)")


def _depth(obj: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _summary(error: ValidationError) -> str:
    """`field: message` pairs of a validation error, short enough for one log line."""
    parts = []
    for err in error.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(payload)"
        parts.append(f"{where}: {err['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _check_matches_topic(info: TopicInfo, payload: Payload) -> None:
    """A payload must name the same site/camera/request as its topic (ACLs act on topics)."""
    if isinstance(payload, EventPayload):
        if payload.site != info.site:
            raise InvalidPayload(f"site {payload.site!r} does not match the topic's {info.site!r}")
        expected = info.camera if info.kind is TopicKind.EVENT else ""
        if payload.camera != expected:
            raise InvalidPayload(
                f"camera {payload.camera!r} does not match the topic's {expected!r}"
            )
    elif isinstance(payload, CameraStatePayload):
        if payload.camera != info.camera:
            raise InvalidPayload(
                f"camera {payload.camera!r} does not match the topic's {info.camera!r}"
            )
    elif isinstance(payload, ReplyPayload) and str(payload.request_id) != info.request_id:
        raise InvalidPayload("request_id does not match the topic's")
