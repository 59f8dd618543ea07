"""The alert feed records a chunk of events in one transaction, with the same outcome as one
event at a time: each alert with its push jobs, nothing lost when one alert fails."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from central.alerts.hook_feed import HookFeed
from central.alerts.push_rules import PushFilters
from central.ingest.store import IngestStore, Received
from central.regulation.scope import Scope
from central.services import Services, build_services
from central.settings import PushConfig, WebConfig
from central.storage.db import CentralDatabase
from fsv_contract import EventPayload, encode, topics
from fsv_contract.codec import decode

pytestmark = pytest.mark.databases("sqlite", "postgres")

T0 = datetime.now(UTC) - timedelta(hours=2)


@dataclass
class World:
    database: CentralDatabase
    svc: Services
    store: IngestStore
    feed: HookFeed
    commands: list[tuple[str, str, dict[str, Any]]]
    announced: list[tuple[str, str]]
    pushed: list[str]


@pytest.fixture
def world(tmp_path: Path, central_db_url: str | None) -> Iterator[World]:
    database = CentralDatabase(central_db_url or tmp_path / "c.db")
    commands: list[tuple[str, str, dict[str, Any]]] = []

    def send(site: str, verb: str, args: dict[str, Any]) -> str:
        commands.append((site, verb, args))
        return f"req-{len(commands)}"

    svc = build_services(database, WebConfig(), PushConfig(), tmp_path, send)
    every = Scope.everything()
    province = svc.orgs.create_org(every, None, "province", name="P")
    city = svc.orgs.create_org(every, province["id"], "city", name="C")
    county = svc.orgs.create_org(every, city["id"], "county", name="K")
    ent = svc.orgs.create_org(
        every, county["id"], "enterprise", name="E", enterprise_type="canteen"
    )
    for site in ("s1", "s2"):
        svc.orgs.create_site(every, ent["id"], site, site)
    svc.push.add_webhook(every, city["id"], "http://127.0.0.1:9/h", "json", "", PushFilters())
    announced: list[tuple[str, str]] = []
    svc.alerts.announce = lambda op, alert, _open: announced.append((op, str(alert["id"])))
    pushed: list[str] = []
    svc.hooks.push = lambda alert: pushed.append(str(alert["id"]))
    store = IngestStore(database)
    feed = HookFeed(store, svc.hooks, chunk=50)
    yield World(database, svc, store, feed, commands, announced, pushed)
    database.close()


def event(eid: UUID, site: str = "s1", camera: str = "cam1", end: bool = False) -> EventPayload:
    return EventPayload(
        event_id=eid, site=site, camera=camera, phase="end" if end else "start",
        kind="rodent", station="kitchen_prep", rule="r", start=T0,
        end=T0 + timedelta(seconds=30) if end else None, score=0.9,
    )  # fmt: skip


def store_events(store: IngestStore, events: Sequence[EventPayload]) -> None:
    store.write_batch(
        [Received(decode(topics.camera_event(e.site, e.camera), encode(e)), time.time())
         for e in events],
        [],
    )  # fmt: skip


def rows(world: World, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with world.database.read() as db:
        return [tuple(r) for r in db.execute(sql, list(args)).fetchall()]


def test_one_failing_alert_leaves_the_others_of_its_chunk_recorded_with_their_jobs(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    ids = [uuid4() for _ in range(5)]
    bad = str(ids[2])
    create = world.svc.jobs.create_many

    def failing(db: Any, alerts: Sequence[dict[str, Any]], now: float) -> int:
        if any(a["id"] == bad for a in alerts):
            raise ValueError("a receiver cannot take this alert")
        return create(db, alerts, now)

    world.svc.alerts.on_created = failing
    store_events(world.store, [event(i, site=f"s{n % 2 + 1}") for n, i in enumerate(ids)])
    with caplog.at_level(logging.ERROR):
        assert world.feed.run_once() == 5
    good = sorted(str(i) for i in ids if str(i) != bad)
    # The chunk's transaction rolled back, then each alert was recorded on its own: the
    # bad one not at all (no alert without its jobs), the others with theirs.
    assert sorted(r[0] for r in rows(world, "select id from alerts")) == good
    jobs = rows(world, "select alert_id, status, target from deliveries order by alert_id")
    assert jobs == [(a, "pending", "webhook") for a in good]
    assert sorted(world.pushed) == good
    assert f"cannot open the alert of event {bad}" in caplog.text
    assert world.store.feed_cursor() == 5  # skipped, as a bad event always was
    assert rows(world, "select count(*) from cameras where camera_id = 'cam1'") == [(2,)]


def test_a_start_and_its_end_in_one_call_make_one_ended_alert_with_one_job(
    world: World,
) -> None:
    a, b = uuid4(), uuid4()
    world.svc.hooks.on_events([event(a), event(a, end=True), event(b, camera="cam2")])
    end = (T0 + timedelta(seconds=30)).timestamp()
    assert sorted(rows(world, 'select id, "end", state from alerts')) == sorted(
        [(str(a), end, "new"), (str(b), None, "new")]
    )
    jobs = rows(world, "select alert_id from deliveries")
    assert sorted(r[0] for r in jobs) == sorted([str(a), str(b)])
    assert sorted(world.pushed) == sorted([str(a), str(b)])
    # Told once per alert, as it now stands; one hold each, `a`'s over its real range.
    assert sorted(world.announced) == sorted([("created", str(a)), ("created", str(b))])
    holds = {args["ref"]: args for _site, verb, args in world.commands if verb == "hold"}
    assert set(holds) == {f"alert:{a}", f"alert:{b}"} and len(world.commands) == 2
    held_until = datetime.fromisoformat(holds[f"alert:{a}"]["end"].replace("Z", "+00:00"))
    assert abs((held_until - (T0 + timedelta(seconds=150))).total_seconds()) < 0.01
    requests = dict(rows(world, "select id, hold_request_id from alerts"))
    assert set(requests.values()) == {"req-1", "req-2"}
    # Fed again (as after a crash before the feed saved its position): nothing new.
    store_events(world.store, [event(a, end=True), event(b, camera="cam2")])
    while world.feed.run_once():
        pass
    assert rows(world, "select count(*) from deliveries") == [(2,)]
    assert sorted(world.pushed) == sorted([str(a), str(b)])
    assert ("created", str(a)) in world.announced and len(world.announced) == 2


def test_an_ended_alert_already_stored_is_updated_in_the_chunk(world: World) -> None:
    a = uuid4()
    store_events(world.store, [event(a)])
    assert world.feed.run_once() == 1
    assert rows(world, 'select "end" from alerts') == [(None,)]
    store_events(world.store, [event(a, end=True), event(uuid4(), site="s2")])
    assert world.feed.run_once() == 2
    end = (T0 + timedelta(seconds=30)).timestamp()
    assert rows(world, 'select "end" from alerts where id = ?', [str(a)]) == [(end,)]
    assert ("changed", str(a)) in world.announced
    assert rows(world, "select count(*) from deliveries") == [(2,)]
