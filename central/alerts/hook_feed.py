"""The alerting feed: hands each new or ended event to the regulator hooks, durably, in order.

Ingest only writes and acknowledges; the hooks (alerts, holds, pushes) follow the events
table by its change counter and keep their position in the database. A burst of events is
therefore acknowledged at ingest speed, alerts follow as fast as the hooks go, and a crash
in between replays the changes after the saved position (the hooks tolerate a repeat).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from central.ingest.store import IngestStore
from central.storage.db import live_reads
from fsv_common.aio import wait_event
from fsv_contract import live
from fsv_contract.payloads import CameraStatePayload, EventPayload, HeartbeatPayload

log = logging.getLogger(__name__)

BATCH = 500
# Events whose alerts commit in one transaction (hooks with `on_events`): few round trips
# per alert, and the live lane gets the database between two chunks of the backlog's. A
# chunk holds the one write connection: 20 alerts take ~0.06 s on PostgreSQL, 50 kept a live
# alert waiting for about 0.15 s a chunk (city run: live alerts 1.31 s at 50, 0.56-0.59 at 20).
CHUNK = 20
IDLE_WAIT_S = 1.0
YIELD_S = 0.05
MAX_YIELD_S = 2.0
# Live events (fsv_contract.live) take the live lane; it looks every LIVE_POLL_S.
LIVE_POLL_S = 0.2
ERROR_PAUSE_S = 1.0
GIVE_WAY_MAX_S = 1.0

Clock = Callable[[], float]


class IngestHooks(Protocol):
    """What the regulator side does with stored messages (alerts, camera list, history).

    `on_event` is called by the alerting feed (central.alerts.hook_feed) for every new or ended
    event, in order, from a worker thread; after a crash the changes after its saved
    position come again. Hooks that also have `on_events(events)` are handed up to CHUNK
    events at a time through it instead (in order; all or none of their alerts stored, a
    database error raised for the feed to retry them). The others are called on the ingest
    worker thread after their batch is committed and before it is acknowledged. They must
    be quick and not raise.
    """

    def on_event(self, event: EventPayload) -> None:
        """An event was stored new or ended (rarely, again after a crash)."""

    def on_camera_state(self, site: str, payload: CameraStatePayload) -> None:
        """A camera state message was stored."""

    def on_heartbeat(self, site: str, payload: HeartbeatPayload) -> None:
        """A heartbeat was stored."""


class HookFeed:
    """Follows `events.change_seq` from the saved cursor and calls `hooks.on_event`.

    Two lanes: the backlog lane walks every change in order from the saved cursor; the live
    lane takes only live events (fsv_contract.live), so an alert happening now reaches the
    inbox and push at once while a flushed backlog is still being worked through behind it.
    Ingest also asks the live lane to feed at once after it stored live events
    (`feed_live_now`), rather than at its next look. The backlog lane sees live events again
    later (hooks tolerate a repeat: the alert exists, nothing is sent twice).
    """

    def __init__(
        self,
        store: IngestStore,
        hooks: IngestHooks,
        batch: int = BATCH,
        clock: Clock = time.time,
        chunk: int = CHUNK,
    ) -> None:
        self.store = store
        self.hooks = hooks
        self.batch = batch
        self.chunk = chunk
        self._clock = clock
        self._live_cursor = 0
        # Each lane on a thread of its own: neither queues behind page reads (or the other).
        self._backlog_thread = ThreadPoolExecutor(1, thread_name_prefix="alert-feed")
        self._live_thread = ThreadPoolExecutor(1, thread_name_prefix="alert-feed-live")
        # Set while the live lane feeds: the backlog lane waits between events, so the two
        # do not race for the database lock (Python's lock is not fair: a thread that takes
        # it in a loop can keep another waiting for seconds).
        self._live_feeding = threading.Event()
        # Whether ingest holds live-lane messages not yet written (set by running_ingest):
        # the backlog lane also waits for those between chunks (at most GIVE_WAY_MAX_S), so
        # a live event is not stored behind a chunk of backlog alerts.
        self.live_waiting: Callable[[], bool] = lambda: False
        # True while `run` runs: with several nodes only the one that holds the feed's
        # lease feeds (central.nodes); the others' ingest must not feed live events.
        self.running = False

    async def close(self) -> None:
        """End both lanes' threads once `run` has ended (a round still running finishes)."""
        for thread in (self._backlog_thread, self._live_thread):
            await asyncio.to_thread(thread.shutdown)

    def run_once(self) -> int:
        """Feed up to one batch of changes (worker thread); returns how many."""
        cursor = self.store.feed_cursor()
        changes = self.store.changes_after(cursor, self.batch)
        done = self._feed(changes, self._give_way)
        if done:
            self.store.set_feed_cursor(changes[done - 1][0])
        return done

    def run_live_once(self) -> int:
        """Feed the changes of live events not fed yet (worker thread); returns how many.

        Its reads (and the hooks' reads meanwhile) use the reader reserved for live alerts,
        never one of the pool that page reads may hold for seconds.
        """
        with live_reads():
            after = max(self._live_cursor, self.store.feed_cursor())
            since = live.live_since(self._clock())
            changes = self.store.live_changes_after(after, since, self.batch)
            if not changes:
                return 0
            self._live_feeding.set()
            try:
                done = self._feed(changes)
            finally:
                self._live_feeding.clear()
        if done:
            self._live_cursor = changes[done - 1][0]
        return done

    def _feed(
        self,
        changes: list[tuple[int, EventPayload | None]],
        give_way: Callable[[], None] | None = None,
    ) -> int:
        """Hand changes to the hooks in order, up to `chunk` events per call of
        `hooks.on_events` (one transaction); returns how many are done.

        It stops at a chunk whose alerts the database refused to store (e.g. another
        process holds the write lock): that chunk and those after come again next round.
        Before each chunk it calls `give_way` (which waits while the live lane feeds).
        """
        on_events = getattr(self.hooks, "on_events", None)
        size = self.chunk if on_events is not None else 1
        done = 0
        while done < len(changes):
            if give_way is not None:
                give_way()
            part = changes[done : done + size]
            events = []
            for seq, payload in part:
                if payload is None:
                    log.error("event change %d cannot be read back; skipped by the alert feed", seq)
                else:
                    events.append(payload)
            try:
                if on_events is not None:
                    on_events(events)
                elif events:
                    self.hooks.on_event(events[0])
            except sqlite3.OperationalError as e:
                first = events[0].event_id if events else None
                log.warning("alerts of %d events from %s not stored yet (%s); retrying",
                            len(events), first, e)  # fmt: skip
                return done
            except Exception:  # noqa: BLE001 - the events are stored; one bad hook run is skipped
                log.exception("alert hook failed for %d events", len(events))
            done += len(part)
        return done

    def _give_way(self) -> None:
        """Wait while the live lane feeds, and (up to GIVE_WAY_MAX_S) while ingest has
        live-lane messages to write."""
        until = time.monotonic() + GIVE_WAY_MAX_S
        while self._live_feeding.is_set() or (time.monotonic() < until and self.live_waiting()):
            time.sleep(0.002)

    async def run(self, changed: asyncio.Event, busy: Callable[[], bool] = lambda: False) -> None:
        """Feed until cancelled; wakes when ingest stored new changes, or every second.

        While ingest has a backlog (`busy`), the backlog lane waits (up to MAX_YIELD_S)
        between batches: acknowledging what the edges sent comes first, since their outboxes
        are bounded; the live lane runs beside it all the time.
        """
        task = asyncio.create_task(self._run_live(), name="alert-feed-live")
        self.running = True
        try:
            while True:
                fed = await self._round(self.run_once, self._backlog_thread)
                if fed and busy():
                    await self._wait_until_idle(busy)
                elif fed < self.batch:
                    await wait_event(changed, IDLE_WAIT_S)
                    changed.clear()
        finally:
            self.running = False
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def feed_live_now(self) -> None:
        """Feed the live events stored so far now, not at the next look (ingest calls it
        after writing live events, before its next backlog batch). Nothing while the feed
        does not run (another node leads it: its live lane looks every LIVE_POLL_S)."""
        if not self.running:
            return
        await self._round(self.run_live_once, self._live_thread)

    async def _run_live(self) -> None:
        while True:
            if await self._round(self.run_live_once, self._live_thread) < self.batch:
                await asyncio.sleep(LIVE_POLL_S)

    @staticmethod
    async def _round(fn: Callable[[], int], thread: ThreadPoolExecutor) -> int:
        try:
            return await asyncio.get_running_loop().run_in_executor(thread, fn)
        except Exception:  # noqa: BLE001 - e.g. the database is busy: try again shortly
            log.exception("alert feed round failed")
            await asyncio.sleep(ERROR_PAUSE_S)
            return 0

    @staticmethod
    async def _wait_until_idle(busy: Callable[[], bool]) -> None:
        waited = 0.0
        while busy() and waited < MAX_YIELD_S:
            await asyncio.sleep(YIELD_S)
            waited += YIELD_S
