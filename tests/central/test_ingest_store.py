"""The ingest store on real SQLite and PostgreSQL: dedupe by event id, end updates, states,
rejects, order."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import Ingest, decode_batch
from central.ingest.store import IngestStore
from central.storage.db import CentralDatabase
from fsv_contract import (
    AgentStatePayload,
    CameraStatePayload,
    EventPayload,
    HeartbeatPayload,
    MediaRef,
    Payload,
    encode,
    topics,
)

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)

pytestmark = pytest.mark.databases("sqlite", "postgres")


@pytest.fixture
def store(tmp_path: Path, central_db_url: str | None) -> Iterator[IngestStore]:
    database = CentralDatabase(central_db_url or tmp_path / "central.db")
    yield IngestStore(database)
    database.close()


def raw(topic: str, payload: Payload | bytes, ts: float = 1.0) -> RawMessage:
    data = payload if isinstance(payload, bytes) else encode(payload)
    return RawMessage(topic, data, ts, mid=1, qos=1)


def event(eid: UUID, phase: str = "start", camera: str = "cam-1", **extra: Any) -> RawMessage:
    fields: dict[str, Any] = {
        "event_id": eid,
        "site": "s1",
        "camera": camera,
        "phase": phase,
        "kind": "no_mask",
        "station": "kitchen_prep",
        "rule": "mask",
        "start": T0,
        "score": 0.5,
    }
    if phase == "end":
        fields["end"] = T0 + timedelta(seconds=30)
        fields["clip"] = MediaRef(
            name="clip.mp4", sha256="a" * 64, bytes=9, content_type="video/mp4"
        )
    fields.update(extra)
    return raw(topics.camera_event("s1", camera), EventPayload(**fields))


def ingest(store: IngestStore, *messages: RawMessage) -> None:
    Ingest(store).process(list(messages))


def test_duplicates_of_either_phase_change_nothing(store: IngestStore) -> None:
    a, b = uuid4(), uuid4()
    ingest(store, event(a), event(a), event(b, "end"))
    ingest(store, event(a, "end", score=0.9), event(a, "end", score=0.1), event(a), event(b))
    rows = {r["event_id"]: r for r in store.events()}
    assert set(rows) == {str(a), str(b)}
    assert rows[str(a)]["phase"] == "end" and rows[str(a)]["score"] == 0.9
    assert rows[str(a)]["clip"]["name"] == "clip.mp4"
    assert rows[str(a)]["end"] == (T0 + timedelta(seconds=30)).timestamp()
    assert rows[str(b)]["phase"] == "end"  # a late start does not reopen an ended event
    stats = store.stats()
    assert stats["accepted"] == 3 and stats["duplicates"] == 4 and stats["kind:event"] == 7


def test_arrival_order_is_kept_per_camera(store: IngestStore) -> None:
    ids = [uuid4() for _ in range(30)]
    batch = [event(e, camera=f"cam-{i % 3}") for i, e in enumerate(ids)]
    ingest(store, *batch[:10])
    ingest(store, *batch[10:])
    for cam in range(3):
        got = [r["event_id"] for r in store.events(camera=f"cam-{cam}", limit=100)]
        assert got == [str(e) for i, e in enumerate(ids) if i % 3 == cam]


def test_camera_state_keeps_the_newest_and_logs_each_change_once(store: IngestStore) -> None:
    topic = topics.camera_state("s1", "cam-1")
    new = CameraStatePayload(camera="cam-1", state="online", since=T0 + timedelta(minutes=1))
    old = CameraStatePayload(camera="cam-1", state="offline", since=T0, reason="timeout")
    ingest(store, raw(topic, new), raw(topic, old), raw(topic, new))
    (cam,) = store.cameras("s1")
    assert cam["state"] == "online" and cam["since"] == new.since.timestamp()
    with store.database.lock:
        logged = store.database.db.execute("select count(*) from camera_state_log").fetchone()
    assert logged[0] == 2


def test_agent_state_and_last_heartbeat_are_queryable(store: IngestStore) -> None:
    hb = HeartbeatPayload(
        ts=T0, uptime_s=5, disk_free_bytes=10, disk_total_bytes=20, cpu_percent=1.5,
        retention_days_available=120.0,
    )  # fmt: skip
    older = hb.model_copy(update={"ts": T0 - timedelta(minutes=1), "cpu_percent": 99.0})
    ingest(
        store,
        raw(topics.agent_state("s1"), AgentStatePayload(state="online", version="1.0")),
        raw(topics.heartbeat("s1"), hb),
        raw(topics.heartbeat("s1"), older),
    )
    (agent,) = store.agents()
    assert agent["state"] == "online" and agent["version"] == "1.0"
    assert agent["last_heartbeat_at"] == T0.timestamp()
    assert agent["heartbeat"]["cpu_percent"] == 1.5
    assert agent["heartbeat"]["retention_days_available"] == 120.0


def test_bad_messages_are_counted_with_topic_and_reason(store: IngestStore) -> None:
    good = event(uuid4())
    bad = [
        raw("fsv/v1/s1/camera/cam-1/event", b"\x00\xff"),
        raw("fsv/v1/s1/camera/cam-1/event", b'{"v": 1, "site": "s1"}'),
        raw("fsv/v1/S1/whatever", b"{}"),
        raw(topics.camera_event("s2", "cam-1"), good.payload),
    ]
    accepted, rejected = decode_batch([good, *bad])
    assert len(accepted) == 1 and len(rejected) == 4
    ingest(store, good, *bad)
    stats = store.stats()
    assert stats["rejected"] == 4 and stats["received"] == 5 and stats["accepted"] == 1
    reasons = {r["topic"]: r["reason"] for r in store.rejects()}
    assert "site 's1' does not match" in reasons[topics.camera_event("s2", "cam-1")]
    assert "not a valid topic level" in reasons["fsv/v1/S1/whatever"]


def test_text_holding_nul_is_a_bad_message_and_ingest_goes_on(store: IngestStore) -> None:
    """PostgreSQL cannot store NUL in text: a site's event carrying one (a value or a key)
    must be refused as a bad message, never reach the database and stall the batch."""
    eid = uuid4()
    good = event(eid)
    as_json = json.loads(good.payload)
    hostile = [
        raw(
            good.topic, json.dumps({**as_json, "event_id": str(uuid4()), "rule": "m\x00"}).encode()
        ),
        raw(good.topic, json.dumps({**as_json, "event_id": str(uuid4()), "a\x00": 1}).encode()),
    ]
    ingest(store, *hostile, good)
    stats = store.stats()
    assert stats["rejected"] == 2 and stats["accepted"] == 1
    assert sorted(r["reason"] for r in store.rejects()) == [
        "a\\x00: text holds a NUL character (\\u0000)",
        "rule: text holds a NUL character (\\u0000)",
    ]
    with store.database.read() as db:
        assert db.execute("select count(*) from events").fetchone()[0] == 1


def test_acks_are_sent_after_the_commit(store: IngestStore) -> None:
    acked: list[tuple[int, int]] = []
    seen_rows: list[int] = []

    def acker(mid: int, qos: int) -> None:
        seen_rows.append(len(store.events()))
        acked.append((mid, qos))

    runner = Ingest(store)
    runner.set_acker(acker)
    runner.process([event(uuid4()), raw("x/y", b"junk")])
    assert acked == [(1, 1), (1, 1)] and seen_rows == [1, 1]


def test_two_nodes_writing_at_once_number_every_change_once(
    tmp_path: Path, central_db_url: str | None
) -> None:
    """Two stores on their own connections (two central nodes) write batches at the same
    time: every change gets a change_seq of its own (the alert feed follows change_seq from
    its cursor, so a number given twice, one committed after the feed passed it, is skipped)."""
    import threading

    target = central_db_url or tmp_path / "central.db"
    databases = [CentralDatabase(target) for _ in range(2)]
    start = threading.Barrier(2)

    def write(store: IngestStore) -> None:
        start.wait()
        for _ in range(30):
            ingest(store, *(event(uuid4()) for _ in range(10)))

    threads = [threading.Thread(target=write, args=(IngestStore(d),)) for d in databases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        with databases[0].read() as db:
            seqs = [r[0] for r in db.execute("select change_seq from events")]
    finally:
        for d in databases:
            d.close()
    assert len(seqs) == 600
    assert len(set(seqs)) == 600, f"{600 - len(set(seqs))} changes share a change_seq"
