"""Ingest's live lane: a live event is stored ahead of a flushed backlog, acks stay in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import Ingest, is_live_event
from central.ingest.store import IngestStore
from central.storage.db import CentralDatabase
from fsv_contract import EventPayload, encode, topics

pytestmark = pytest.mark.databases("sqlite", "postgres")


def message(mid: int, start: datetime) -> RawMessage:
    payload = EventPayload(
        event_id=uuid4(), site="s1", camera="c1", phase="start", kind="no_mask", station="k",
        rule="r", start=start, score=0.5,
    )  # fmt: skip
    return RawMessage(topics.camera_event("s1", "c1"), encode(payload), time.time(), mid, 1)


@asynccontextmanager
async def running(ingest: Ingest) -> AsyncIterator[None]:
    """Ingest's drain running as a task, cancelled and awaited on leaving."""
    task = asyncio.create_task(ingest.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def wait_until(done: Callable[[], bool], timeout_s: float, every_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:  # noqa: ASYNC110 - test polling
        await asyncio.sleep(every_s)


def test_live_events_are_told_apart_by_their_start() -> None:
    now = datetime.now(UTC)
    assert is_live_event(message(1, now - timedelta(seconds=5)))
    assert not is_live_event(message(2, now - timedelta(hours=2)))
    assert not is_live_event(RawMessage(topics.heartbeat("s1"), b'{"start":"x"}', time.time()))
    assert not is_live_event(RawMessage(topics.camera_event("s1", "c1"), b"garbage", time.time()))


@pytest.mark.asyncio
async def test_a_live_event_jumps_the_backlog_and_acks_keep_arrival_order(
    tmp_path: Path,
    central_db_url: str | None,
) -> None:
    store = IngestStore(CentralDatabase(central_db_url or tmp_path / "c.db"))
    ingest = Ingest(store, batch_max=500)
    acks: list[int] = []
    ingest.set_acker(lambda mid, _qos: acks.append(mid))
    old = datetime.now(UTC) - timedelta(hours=2)
    backlog = [message(mid, old) for mid in range(1, 3001)]
    live = message(3001, datetime.now(UTC))
    for raw in [*backlog, live]:
        ingest.deliver(raw)  # all delivered before the drain starts: a flushed outbox
    async with running(ingest):
        await wait_until(lambda: len(acks) >= 3001, 60)
    assert acks == list(range(1, 3002))  # every message acked once, in arrival order
    rows = store.events(limit=5000)
    assert len(rows) == 3001  # stored once each (no duplicate write of the live one)
    order = [r["event_id"] for r in rows]
    live_id = EventPayload.model_validate_json(live.payload).event_id
    assert order.index(str(live_id)) == 0  # stored before any of the backlog
    assert store.stats()["duplicates"] == 0


def test_backlog_batches_shrink_when_writes_are_slow_and_grow_back(
    tmp_path: Path, central_db_url: str | None
) -> None:
    ingest = Ingest(
        IngestStore(CentralDatabase(central_db_url or tmp_path / "c.db")),
        batch_max=2000,
        batch_target_s=0.2,
    )
    ingest._adapt_batch(2000, 1.6)  # a full batch took 8 x the 0.2 s target
    assert ingest.batch_size == 250
    ingest._adapt_batch(100, 0.01)  # the queue ran dry, quickly: says nothing of a full batch
    assert ingest.batch_size == 250
    # Not full (the broker's in-flight window held 200) and over the target: smaller too.
    ingest._adapt_batch(200, 0.4)
    assert ingest.batch_size == 100
    ingest._adapt_batch(100, 50.0)  # however slow, batches keep a useful size
    assert ingest.batch_size == 50
    for _ in range(8):
        ingest._adapt_batch(ingest.batch_size, 0.01)
    assert ingest.batch_size == 2000  # fast writes: back to the configured maximum


@pytest.mark.asyncio
async def test_live_lane_messages_are_written_first_and_acked_on_their_connection(
    tmp_path: Path,
    central_db_url: str | None,
) -> None:
    store = IngestStore(CentralDatabase(central_db_url or tmp_path / "c.db"))
    ingest = Ingest(store, batch_max=500)
    main_acks: list[int] = []
    live_acks: list[int] = []
    ingest.set_acker(lambda mid, _q: main_acks.append(mid), lambda mid, _q: live_acks.append(mid))
    old = datetime.now(UTC) - timedelta(hours=2)
    for mid in range(1, 1001):
        ingest.deliver(message(mid, old))
    live = message(7, datetime.now(UTC))
    ingest.deliver(RawMessage(live.topic, live.payload, time.time(), 7, 1, live=True))
    ingest.deliver(message(1001, datetime.now(UTC)))  # a copy of another event, main lane
    async with running(ingest):
        await wait_until(lambda: len(main_acks) >= 1001, 60)
    assert live_acks == [7]  # its own connection's mid, acked there only
    assert main_acks == list(range(1, 1002))
    order = [r["event_id"] for r in store.events(limit=5000)]
    assert order[0] == str(EventPayload.model_validate_json(live.payload).event_id)


@pytest.mark.asyncio
async def test_live_lane_events_reach_the_alert_feed_before_the_next_backlog_batch(
    tmp_path: Path,
    central_db_url: str | None,
) -> None:
    store = IngestStore(CentralDatabase(central_db_url or tmp_path / "c.db"))
    ingest = Ingest(store, batch_max=10)
    steps: list[str] = []
    write_batch = store.write_batch

    def writing(accepted: Any, rejected: Any) -> Any:
        steps.append(f"write {len(accepted)}")
        return write_batch(accepted, rejected)

    async def feed_live_now() -> None:
        steps.append("feed")
        await asyncio.sleep(0.05)  # the alert's own writes
        steps.append("fed")

    store.write_batch = writing  # type: ignore[method-assign]
    ingest.live_stored = feed_live_now
    old = datetime.now(UTC) - timedelta(hours=2)
    for mid in range(1, 6):
        ingest.deliver(message(mid, old))
    live = message(6, datetime.now(UTC))
    ingest.deliver(RawMessage(live.topic, live.payload, time.time(), 6, 1, live=True))
    try:
        async with running(ingest):
            await wait_until(lambda: len(steps) == 4, 5, every_s=0.01)
    finally:
        await ingest.close()
    assert steps == ["write 1", "feed", "fed", "write 5"]


def _refuse_camera(database: CentralDatabase, camera: str, postgres: bool) -> None:
    """A trigger refusing one camera's events: a write the database fails every time."""
    with database.transaction() as db:
        if postgres:
            db.execute(
                "create function refuse_camera() returns trigger language plpgsql as $$ begin "
                f"if new.camera = '{camera}' then raise exception 'refused for the test'; "
                "end if; return new; end $$"
            )
            db.execute(
                "create trigger refuse_camera before insert on events "
                "for each row execute function refuse_camera()"
            )
        else:
            db.execute(
                f"create trigger refuse_camera before insert on events when new.camera = "
                f"'{camera}' begin select raise(abort, 'refused for the test'); end"
            )


@pytest.mark.asyncio
async def test_a_message_the_database_refuses_is_set_aside_and_the_rest_is_stored(
    tmp_path: Path, central_db_url: str | None, central_backend: str
) -> None:
    database = CentralDatabase(central_db_url or tmp_path / "c.db")
    _refuse_camera(database, "c2", central_backend == "postgres")
    store = IngestStore(database)
    ingest = Ingest(store, batch_max=500, unstored_dir=tmp_path / "unstored")
    acks: list[int] = []
    ingest.set_acker(lambda mid, _qos: acks.append(mid))
    old = datetime.now(UTC) - timedelta(hours=2)
    batch = [message(mid, old) for mid in range(1, 6)]
    poison = message(3, old)
    poison_payload = poison.payload.replace(b'"camera":"c1"', b'"camera":"c2"')
    poison = RawMessage(topics.camera_event("s1", "c2"), poison_payload, time.time(), 3, 1)
    batch[2] = poison
    for raw in batch:
        ingest.deliver(raw)
    async with running(ingest):
        await wait_until(lambda: len(acks) >= 5, 30)
    assert sorted(acks) == [1, 2, 3, 4, 5]  # the refused one too: it must not come back forever
    assert len(store.events(limit=10)) == 4
    stats = store.stats()
    assert stats["accepted"] == 4 and stats["rejected"] == 1
    (reject,) = store.rejects()
    assert reject["topic"] == topics.camera_event("s1", "c2")
    assert (
        "the database refused it" in reject["reason"]
        and "refused for the test" in (reject["reason"])
    )
    (kept,) = (tmp_path / "unstored").iterdir()
    assert kept.name in reject["reason"]
    assert kept.read_bytes() == topics.camera_event("s1", "c2").encode() + b"\n" + poison_payload
    database.close()
