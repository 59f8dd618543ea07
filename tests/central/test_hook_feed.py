"""The alerting feed follows new and ended events in order and remembers where it stopped."""

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from central_support import make_config

from central.alerts import hook_feed
from central.alerts.hook_feed import HookFeed
from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import Ingest, running_ingest
from central.ingest.store import IngestStore
from central.storage.db import CentralDatabase
from fsv_contract import CameraStatePayload, EventPayload, HeartbeatPayload, encode, topics

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)

pytestmark = pytest.mark.databases("sqlite", "postgres")


class Hooks:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def on_event(self, event: EventPayload) -> None:
        if event.kind == "boom":
            raise RuntimeError("hook bug")
        self.events.append((str(event.event_id), event.phase))

    def on_camera_state(self, site: str, payload: CameraStatePayload) -> None:
        pass

    def on_heartbeat(self, site: str, payload: HeartbeatPayload) -> None:
        pass


def message(eid: UUID, phase: str = "start", kind: str = "no_mask") -> RawMessage:
    end = T0 + timedelta(seconds=9) if phase == "end" else None
    payload = EventPayload(
        event_id=eid, site="s1", camera="c1", phase=phase, kind=kind, station="k", rule="r",
        start=T0, end=end, score=0.5,
    )  # fmt: skip
    return RawMessage(topics.camera_event("s1", "c1"), encode(payload), 0.0)


def test_feed_sees_each_change_once_in_order_and_resumes(
    tmp_path: Path, central_db_url: str | None
) -> None:
    store = IngestStore(CentralDatabase(central_db_url or tmp_path / "c.db"))
    ingest = Ingest(store)
    hooks = Hooks()
    feed = HookFeed(store, hooks, batch=2)
    a, b, c = uuid4(), uuid4(), uuid4()
    ingest.process([message(a), message(b), message(a), message(c, kind="boom")])
    assert feed.run_once() == 2 and feed.run_once() == 1 and feed.run_once() == 0
    ingest.process([message(a, "end"), message(a, "end")])
    assert feed.run_once() == 1
    assert hooks.events == [(str(a), "start"), (str(b), "start"), (str(a), "end")]
    assert store.feed_cursor() == 4
    # A start and its end stored before the feed looked: the feed sees the ended event once.
    d = uuid4()
    ingest.process([message(d), message(d, "end")])
    assert feed.run_once() == 1 and hooks.events[-1] == (str(d), "end")

    restarted = HookFeed(store, Hooks())
    assert restarted.run_once() == 0  # the position survived
    store.set_feed_cursor(4)  # as if it crashed before saving the last batch
    replay = Hooks()
    HookFeed(store, replay).run_once()
    assert replay.events == [(str(d), "end")]


def test_live_lane_feeds_a_fresh_event_before_the_backlog(
    tmp_path: Path, central_db_url: str | None
) -> None:
    store = IngestStore(CentralDatabase(central_db_url or tmp_path / "c.db"))
    ingest = Ingest(store)
    hooks = Hooks()
    now = T0 + timedelta(days=3)
    feed = HookFeed(store, hooks, batch=100, clock=lambda: now.timestamp())
    backlog = [message(uuid4()) for _ in range(300)]  # flushed after an outage: started at T0
    fresh = uuid4()
    live = EventPayload(
        event_id=fresh, site="s1", camera="c1", phase="start", kind="no_mask", station="k",
        rule="r", start=now, score=0.5,
    )  # fmt: skip
    ingest.process([*backlog, RawMessage(topics.camera_event("s1", "c1"), encode(live), 0.0)])
    assert feed.run_live_once() == 1 and hooks.events == [(str(fresh), "start")]
    assert feed.run_live_once() == 0  # fed once
    while feed.run_once():
        pass
    assert len(hooks.events) == 302  # the backlog lane sees it again; hooks tolerate repeats
    assert store.feed_cursor() == 301


@pytest.mark.asyncio
async def test_running_ingest_ends_its_worker_threads(
    tmp_path: Path, central_db_url: str | None, mosquitto_broker: Any
) -> None:
    config = make_config(tmp_path, mosquitto_broker.port)
    store = IngestStore(CentralDatabase(central_db_url or tmp_path / "c.db"))
    hooks = Hooks()
    ingest = Ingest(store, hooks=hooks)
    eid = uuid4()
    payload = EventPayload(
        event_id=eid, site="s1", camera="c1", phase="start", kind="no_mask", station="k",
        rule="r", start=datetime.now(UTC), score=0.5,
    )  # fmt: skip
    names = ("ingest-write", "alert-feed")  # "alert-feed-live" too
    async with running_ingest(config, ingest, "test"):
        ingest.deliver(RawMessage(topics.camera_event("s1", "c1"), encode(payload), time.time()))
        for _ in range(500):
            if (str(eid), "start") in hooks.events:
                break
            await asyncio.sleep(0.01)
        assert (str(eid), "start") in hooks.events
        running = {t.name.rsplit("_", 1)[0] for t in threading.enumerate()}
        assert {"ingest-write", "alert-feed", "alert-feed-live"} <= running
    assert not [t.name for t in threading.enumerate() if t.name.startswith(names)]


def test_backlog_lane_waits_for_live_messages_ingest_has_not_written(
    tmp_path: Path, central_db_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = IngestStore(CentralDatabase(central_db_url or tmp_path / "c.db"))
    Ingest(store).process([message(uuid4()) for _ in range(3)])
    hooks = Hooks()
    feed = HookFeed(store, hooks)
    waiting = threading.Event()
    waiting.set()
    feed.live_waiting = waiting.is_set
    lane = threading.Thread(target=feed.run_once)
    lane.start()
    time.sleep(0.3)
    assert hooks.events == []  # not a chunk started while a live message waits
    waiting.clear()  # ingest wrote it
    lane.join(10)
    assert len(hooks.events) == 3
    # Live messages that never stop coming hold the backlog lane up a while only.
    monkeypatch.setattr(hook_feed, "GIVE_WAY_MAX_S", 0.2)
    Ingest(store).process([message(uuid4())])
    waiting.set()
    began = time.monotonic()
    assert feed.run_once() == 1
    assert 0.2 <= time.monotonic() - began < 5
