"""The alerting feed: hands each new or ended event to the regulator hooks, durably, in order.

Ingest only writes and acknowledges; the hooks (alerts, holds, pushes) follow the events
table by its change counter and keep their position in the database. A burst of events is
therefore acknowledged at ingest speed, alerts follow as fast as the hooks go, and a crash
in between replays the changes after the saved position (the hooks tolerate a repeat).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from central.ingest.store import IngestStore
from fsv_contract.payloads import CameraStatePayload, EventPayload, HeartbeatPayload

log = logging.getLogger(__name__)

BATCH = 500
IDLE_WAIT_S = 1.0
YIELD_S = 0.05
MAX_YIELD_S = 2.0


class IngestHooks(Protocol):
    """What the regulator side does with stored messages (alerts, camera list, history).

    `on_event` is called by the alerting feed (central.alerts.hook_feed) for every new or ended
    event, in order, from a worker thread; after a crash the changes after its saved
    position come again. The others are called on the ingest worker thread after their
    batch is committed and before it is acknowledged. They must be quick and not raise.
    """

    def on_event(self, event: EventPayload) -> None:
        """An event was stored new or ended (rarely, again after a crash)."""

    def on_camera_state(self, site: str, payload: CameraStatePayload) -> None:
        """A camera state message was stored."""

    def on_heartbeat(self, site: str, payload: HeartbeatPayload) -> None:
        """A heartbeat was stored."""


class HookFeed:
    """Follows `events.change_seq` from the saved cursor and calls `hooks.on_event`."""

    def __init__(self, store: IngestStore, hooks: IngestHooks, batch: int = BATCH) -> None:
        self.store = store
        self.hooks = hooks
        self.batch = batch

    def run_once(self) -> int:
        """Feed up to one batch of changes (worker thread); returns how many."""
        cursor = self.store.feed_cursor()
        changes = self.store.changes_after(cursor, self.batch)
        for seq, payload in changes:
            if payload is None:
                log.error("event change %d cannot be read back; skipped by the alert feed", seq)
                continue
            try:
                self.hooks.on_event(payload)
            except Exception:  # noqa: BLE001 - the event is stored; one bad hook run is skipped
                log.exception("alert hook failed for event %s", payload.event_id)
        if changes:
            self.store.set_feed_cursor(changes[-1][0])
        return len(changes)

    async def run(self, changed: asyncio.Event, busy: Callable[[], bool] = lambda: False) -> None:
        """Feed until cancelled; wakes when ingest stored new changes, or every second.

        While ingest has a backlog (`busy`), it waits (up to MAX_YIELD_S) between batches:
        acknowledging what the edges sent comes first, since their outboxes are bounded;
        alerts follow a burst, and under sustained load still advance every MAX_YIELD_S.
        """
        while True:
            try:
                fed = await asyncio.to_thread(self.run_once)
            except Exception:  # noqa: BLE001 - e.g. the database is busy: try again shortly
                log.exception("alert feed round failed")
                fed = 0
            if fed and busy():
                await self._wait_until_idle(busy)
            elif fed < self.batch:
                try:
                    await asyncio.wait_for(changed.wait(), IDLE_WAIT_S)
                except TimeoutError:
                    pass
                changed.clear()

    @staticmethod
    async def _wait_until_idle(busy: Callable[[], bool]) -> None:
        waited = 0.0
        while busy() and waited < MAX_YIELD_S:
            await asyncio.sleep(YIELD_S)
            waited += YIELD_S
