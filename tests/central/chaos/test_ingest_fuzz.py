"""10,000 hostile payloads at central through the broker: no crash, every one counted."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from mqtt_client import TestClient
from mqtt_world import MqttWorld, wait_for
from pydantic import ValidationError

from fsv_contract import MAX_PAYLOAD_BYTES, EventPayload

pytestmark = pytest.mark.slow

COUNT = 10_000
SITE = "site-a"


def _valid_event(rng: random.Random) -> dict[str, Any]:
    return {
        "v": 1, "event_id": "6f1c3e0e-5d7a-4a53-9a1e-3b1f7d7e8a01", "site": SITE,
        "camera": "cam-1", "phase": "start", "kind": "no_mask", "station": "k", "rule": "r",
        "start": "2025-03-01T08:00:00Z", "score": rng.random(),
    }  # fmt: skip


def _wrong_types(rng: random.Random) -> bytes:
    event = _valid_event(rng)
    key = rng.choice(sorted(event))
    event[key] = rng.choice([None, [], {}, 1e308, -1, "x" * rng.randint(0, 99), True, [1, 2]])
    try:
        EventPayload.model_validate(event)
        event["score"] = "high"  # the change happened to keep it valid (e.g. a short rule)
    except ValidationError:
        pass
    return json.dumps(event).encode()


def _huge(rng: random.Random) -> bytes:
    event = _valid_event(rng)
    size = rng.choice([70_000, 200_000, MAX_PAYLOAD_BYTES + 10])
    event[rng.choice(["kind", "rule", "station", "camera"])] = "x" * size
    return json.dumps(event).encode()


def _deep(rng: random.Random) -> bytes:
    depth = rng.randint(40, 20_000)
    event = _valid_event(rng)
    body = json.dumps(event)[:-1] + ', "details": ' + "[" * depth + "]" * depth + "}"
    return body.encode()


def _missing(rng: random.Random) -> bytes:
    event = _valid_event(rng)
    for key in rng.sample(["event_id", "site", "phase", "kind", "start", "score"], 2):
        del event[key]
    return json.dumps(event).encode()


def _random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(0, 2000))


MAKERS = [_random_bytes, _wrong_types, _huge, _deep, _missing]
TOPICS = [
    f"fsv/v1/{SITE}/camera/cam-1/event",
    f"fsv/v1/{SITE}/camera/cam-1/state",
    f"fsv/v1/{SITE}/agent/heartbeat",
    f"fsv/v1/{SITE}/agent/state",
    f"fsv/v1/{SITE}/agent/event",
    f"fsv/v1/{SITE}/camera/CAM!/event",
    f"fsv/v1/{SITE}/reply/not-a-uuid",
]


def test_fuzzed_payloads_are_all_rejected_and_counted(world: MqttWorld) -> None:
    rng = random.Random(20250301)
    client = TestClient(world.broker.port, SITE, world.passwords[SITE]).start()
    try:
        weights = [30, 30, 2, 8, 30]
        for i in range(COUNT):
            maker = rng.choices(MAKERS, weights)[0]
            mid = client.publish(TOPICS[i % len(TOPICS)], maker(rng))
        wait_for(lambda: mid in client.acks, 120, "the broker to take every message", 0.2)
    finally:
        client.stop()
    stats = wait_for(
        lambda: (s := world.central.stats())["rejected"] >= COUNT and s, 120,
        "central to count every message", 0.5,
    )  # fmt: skip
    assert stats["rejected"] == COUNT and stats["accepted"] == 0
    assert stats["received"] == COUNT
    assert world.central.alive()
    reasons = world.central.query("select topic, reason from ingest_rejects")
    assert len(reasons) == 1000  # the newest, with topic and reason, for the operator
    assert all(topic and reason for topic, reason in reasons)
