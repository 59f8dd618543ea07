"""The codec: what the edge encodes, central decodes; bad bytes give InvalidPayload."""

import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from fsv_contract import (
    MAX_JSON_DEPTH,
    MAX_PAYLOAD_BYTES,
    CameraStatePayload,
    EventPayload,
    InvalidPayload,
    InvalidTopic,
    decode,
    encode,
    topics,
)

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def event(camera: str = "cam-1", site: str = "s1") -> EventPayload:
    return EventPayload(
        event_id=uuid4(),
        site=site,
        camera=camera,
        phase="start",
        kind="no_mask",
        station="kitchen_prep",
        rule="mask-1",
        start=T0,
        score=0.5,
    )


def test_encoded_event_decodes_to_the_same_payload() -> None:
    e = event()
    msg = decode(topics.camera_event("s1", "cam-1"), encode(e))
    assert msg.payload == e and msg.topic.camera == "cam-1"
    assert json.loads(encode(e))["event_id"] == str(e.event_id)


def test_payload_must_match_its_topic() -> None:
    with pytest.raises(InvalidPayload, match="site"):
        decode(topics.camera_event("s2", "cam-1"), encode(event()))
    with pytest.raises(InvalidPayload, match="camera"):
        decode(topics.camera_event("s1", "cam-2"), encode(event()))
    with pytest.raises(InvalidPayload, match="camera"):
        decode(topics.agent_event("s1"), encode(event()))
    assert decode(topics.agent_event("s1"), encode(event(camera=""))).topic.site == "s1"
    state = CameraStatePayload(camera="cam-1", state="online", since=T0)
    with pytest.raises(InvalidPayload, match="camera"):
        decode(topics.camera_state("s1", "cam-9"), encode(state))


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe\x00",
        b"not json",
        b"[1, 2]",
        b"null",
        b'{"v": 1}',
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps(
            {"a": json.loads("[" * (MAX_JSON_DEPTH + 2) + "]" * (MAX_JSON_DEPTH + 2))}
        ).encode(),
        b'{"v": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}',
    ],
)
def test_bad_bytes_raise_invalid_payload(data: bytes) -> None:
    with pytest.raises(InvalidPayload):
        decode(topics.camera_event("s1", "cam-1"), data)


def test_unknown_topics_raise_invalid_topic() -> None:
    with pytest.raises(InvalidTopic):
        decode("fsv/v1/s1/camera/cam-1/other", encode(event()))


def test_oversized_payload_cannot_be_encoded() -> None:
    big = event().model_copy(update={"details": {"blob": "x" * MAX_PAYLOAD_BYTES}})
    with pytest.raises(InvalidPayload, match="limit"):
        encode(big)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_on_the_wire(number: str) -> None:
    from fsv_contract.video import parse_control

    good = json.loads(encode(event()))
    text = json.dumps(good).replace('"score": 0.5', f'"score": {number}')
    assert number in text
    with pytest.raises(InvalidPayload, match="number"):
        decode(topics.camera_event("s1", "cam-1"), text.encode())
    with pytest.raises(InvalidPayload, match="number"):
        parse_control('{"type": "stats", "fps": ' + number + "}")


def test_text_holding_nul_is_refused_and_named_but_a_written_backslash_u_is_text() -> None:
    from fsv_contract.video import parse_control

    good = json.loads(encode(event()))
    topic = topics.camera_event("s1", "cam-1")
    with pytest.raises(InvalidPayload, match=r"^rule: text holds a NUL"):
        decode(topic, json.dumps({**good, "rule": "mask\x00"}).encode())
    with pytest.raises(InvalidPayload, match=r"^extra\\x00: text holds a NUL"):
        decode(topic, json.dumps({**good, "extra\x00": 1}).encode())
    with pytest.raises(InvalidPayload, match="NUL"):
        parse_control('{"type": "stats", "note": ["ok", "a\\u0000"]}')
    # The six characters \u0000 written as text (an escaped backslash) are no NUL.
    as_text = decode(topic, json.dumps({**good, "rule": "r\\u0000"}).encode())
    assert isinstance(as_text.payload, EventPayload) and as_text.payload.rule == "r\\u0000"
