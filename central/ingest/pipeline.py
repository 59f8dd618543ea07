"""Ingest: MQTT messages → contract validation → one database transaction per drained batch."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from central.alerts.hook_feed import HookFeed, IngestHooks
from central.config import CentralConfig
from central.ingest.adopt import NODE_LEASE, adopt_dead_nodes
from central.ingest.broker_client import BrokerClient, RawMessage
from central.ingest.media_types import ALLOWED_TYPES, allowed
from central.ingest.store import BatchResult, IngestStore, Received, Rejection
from central.nodes import ALERT_FEED, Leases, lead, node_id, run_forever
from fsv_contract import live
from fsv_contract.codec import Message, decode
from fsv_contract.errors import ContractError, InvalidPayload
from fsv_contract.integrity import AnchorPayload
from fsv_contract.payloads import CameraStatePayload, EventPayload, HeartbeatPayload, Payload

log = logging.getLogger(__name__)

__all__ = ["Ingest", "IngestHooks", "decode_batch", "running_ingest"]


def _refused_for_good(error: BaseException) -> bool:
    """Whether the database refused a write for what it holds, not for its own state: the
    same write would fail again (a value PostgreSQL cannot store, a broken constraint).
    A locked, busy or full database, or a lost connection, is an OperationalError (or an
    OSError) and is worth retrying."""
    if isinstance(error, sqlite3.OperationalError | sqlite3.ProgrammingError | OSError):
        return False
    return isinstance(error, sqlite3.DatabaseError | ValueError | TypeError | OverflowError)


# How far ahead of central's clock an edge may date a heartbeat, a camera state or the end of
# an anchored segment: a box whose clock runs a few minutes fast is still heard.
CLOCK_AHEAD_S = 600.0


def decode_batch(
    batch: Sequence[RawMessage], now: float | None = None
) -> tuple[list[Received], list[Rejection]]:
    """Split raw messages into valid ones and rejections with a reason (never raises);
    `now` is central's clock (default: the time now)."""
    now = time.time() if now is None else now
    accepted: list[Received] = []
    rejected: list[Rejection] = []
    for raw in batch:
        try:
            message = decode(raw.topic, raw.payload)
            if isinstance(message.payload, EventPayload):
                check_media_types(message.payload)
            check_not_ahead(message.payload, now)
            if isinstance(message.payload, AnchorPayload):
                message, refused = without_links_ahead(message, message.payload, now)
                rejected += [
                    Rejection(raw.topic, r, 0, raw.received_at, link=True) for r in refused
                ]
            accepted.append(Received(message, raw.received_at))
        except ContractError as e:
            rejected.append(Rejection(raw.topic, str(e), len(raw.payload), raw.received_at))
        except Exception as e:  # noqa: BLE001 - one hostile payload must not stop ingest
            reason = f"unexpected {type(e).__name__}: {e}"
            rejected.append(Rejection(raw.topic, reason, len(raw.payload), raw.received_at))
    return accepted, rejected


def check_media_types(event: EventPayload) -> None:
    """Refuse an event announcing media of a type off the media allow-list."""
    parts = (
        ("snapshot", event.snapshot),
        ("clip", event.clip),
        ("first_clip", event.first_clip),
        ("frame", event.frame),
    )
    for part, ref in parts:
        if ref is not None and not allowed(ref.content_type):
            raise InvalidPayload(
                f"{part}.content_type {ref.content_type[:100]!r} is not an accepted media type"
                f" ({', '.join(ALLOWED_TYPES)})"
            )


def check_not_ahead(payload: Payload, now: float) -> None:
    """Refuse a heartbeat or camera state dated more than CLOCK_AHEAD_S after `now`.

    Both are kept as "the newest wins" by their own date, and a heartbeat's date drives the
    heartbeat history (its samples, their purge): one dated in the future would pin the
    site's row until that date, credit recording hours ahead and purge every site's samples.
    """
    if isinstance(payload, HeartbeatPayload):
        field, when = "ts", payload.ts
    elif isinstance(payload, CameraStatePayload):
        field, when = "since", payload.since
    else:
        return
    ahead = when.timestamp() - now
    if ahead > CLOCK_AHEAD_S:
        raise InvalidPayload(
            f"{field} {when.isoformat()} is {ahead:.0f} s ahead of central's clock "
            f"(at most {CLOCK_AHEAD_S:.0f} s); check the box's clock"
        )


def without_links_ahead(
    message: Message, payload: AnchorPayload, now: float
) -> tuple[Message, list[str]]:
    """The anchor message without its links whose `end` lies more than CLOCK_AHEAD_S after
    `now`, and why each was refused.

    A segment cannot be sealed before it ends: anchored, such a link would date footage
    ahead (retention, the anchored period, replay). Only the link is refused, not the batch,
    and the chain head stays on the last link anchored: the link after a refused one does
    not follow it, and that gap is a finding (central.integrity.anchors).
    """
    refused: list[str] = []
    cameras = []
    for cam in payload.cameras:
        kept = []
        for link in cam.links:
            ahead = link.end - now
            if ahead > CLOCK_AHEAD_S:
                refused.append(
                    f"anchor link {cam.camera} {link.path}: end {link.end:.0f} is {ahead:.0f} s "
                    f"ahead of central's clock (at most {CLOCK_AHEAD_S:.0f} s); not anchored, "
                    "check the box's clock"
                )
            else:
                kept.append(link)
        cameras.append(
            cam if len(kept) == len(cam.links) else cam.model_copy(update={"links": kept})
        )
    if not refused:
        return message, []
    payload = payload.model_copy(update={"cameras": cameras})
    return dataclasses.replace(message, payload=payload), refused


BATCH_MIN = 50  # the smallest backlog batch, however slow the writes
# After storing live-lane events, the drain waits this long at most for their alerts before
# it writes the next backlog batch (see `Ingest.live_stored`).
LIVE_HANDOFF_S = 0.5


def is_live_event(raw: RawMessage) -> bool:
    """True for an event message central takes as live (fsv_contract.live; a cheap peek)."""
    return raw.topic.endswith("/event") and live.arrived_live(raw.payload, raw.received_at)


class Ingest:
    """Drains delivered messages in arrival order, one batch (≤ batch_max) at a time.

    Decoding and the database transaction run in a worker thread; the broker acks are
    sent after the commit and after `hooks` saw every stored message.

    Live lane: while more than a batch waits (e.g. an outbox flushed after an outage), the
    live events among it are written first, in a transaction of their own, so an alert
    happening now is not stored behind minutes of backlog. They are acknowledged only when
    the drain reaches them, so the broker still gets its acks in arrival order.

    Messages from central's live-lane connection (`raw.live`) skip the queue altogether:
    each round writes them first and acknowledges them on that connection at once (its acks
    are in its own order). The main connection brings the same events again later; the
    dedupe by event id keeps one copy. So that a live message never waits long for the batch
    being written, backlog batches are sized to take about `batch_target_s` each (between
    BATCH_MIN and `batch_max` messages), from the time the last ones took.
    """

    def __init__(
        self,
        store: IngestStore,
        batch_max: int = 2000,
        hooks: IngestHooks | None = None,
        batch_target_s: float = 0.1,
        unstored_dir: Path | None = None,
    ) -> None:
        self.store = store
        # Where a message the database refuses for good is set aside (its bytes kept).
        self.unstored_dir = unstored_dir
        self.batch_max = batch_max
        self.batch_target_s = batch_target_s
        self.batch_size = batch_max  # adapted to batch_target_s by each write
        # Writes run on a thread of their own, never queued behind page reads in the default pool.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ingest-write")
        self.hooks = hooks
        self.changed = asyncio.Event()  # set after a batch stored new or ended events
        self._pending: deque[RawMessage] = deque()
        self._ready = asyncio.Event()
        self._wake_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acker: Callable[[int, int], None] | None = None
        self._live_acker: Callable[[int, int], None] | None = None
        self._priority: deque[RawMessage] = deque()  # from the live-lane connection
        self._live: list[RawMessage] = []  # live events among the pending, not yet written
        self._live_lock = threading.Lock()
        self._written_early: set[int] = set()  # id() of pending messages already stored
        # Called after live events were stored (the alert feed's live lane feeds them at once
        # rather than at its next look). After events of the live-lane connection the next
        # backlog batch waits for it (up to LIVE_HANDOFF_S), so the alert's own writes do
        # not queue for the database behind that batch; live events found among the backlog
        # (edges without the lane) do not hold the drain up.
        self.live_stored: Callable[[], Awaitable[None]] | None = None
        self._handoffs: set[asyncio.Future[None]] = set()

    async def close(self) -> None:
        """End the write thread once `run` has ended (a write still running finishes first)."""
        for handoff in list(self._handoffs):
            handoff.cancel()
        await asyncio.gather(*self._handoffs, return_exceptions=True)
        await asyncio.to_thread(self._executor.shutdown)

    def deliver(self, raw: RawMessage) -> None:
        """Called on paho's thread for each delivered message: queue it, never block.

        The event loop is woken once per burst, not once per message.
        """
        if raw.live:
            self._priority.append(raw)
        else:
            if is_live_event(raw):
                with self._live_lock:
                    self._live.append(raw)
            self._pending.append(raw)
        if not self._wake_scheduled and self._loop is not None:
            self._wake_scheduled = True
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError:
                # The loop is closing: the message stays unacked and the broker redelivers it.
                log.debug("event loop closed; %s left for redelivery", raw.topic)

    def _wake(self) -> None:
        self._wake_scheduled = False
        self._ready.set()

    def live_waiting(self) -> bool:
        """Whether messages of the live-lane connection wait to be written (any thread)."""
        return bool(self._priority)

    @property
    def backlog(self) -> int:
        """Messages delivered but not yet written."""
        return len(self._pending) + len(self._priority)

    def set_acker(
        self,
        acker: Callable[[int, int], None],
        live_acker: Callable[[int, int], None] | None = None,
    ) -> None:
        """Who acknowledges a written message to the broker (mid, qos), on the main
        connection and on the live-lane connection."""
        self._acker = acker
        self._live_acker = live_acker

    async def run(self) -> None:
        """Drain forever (until cancelled); a failing batch is retried, never dropped."""
        self._loop = asyncio.get_running_loop()
        while True:
            if not self._pending and not self._priority:
                await self._ready.wait()
            self._ready.clear()
            if self._priority and await self._write_priority():
                await self._hand_off_live(wait=True)
            if len(self._pending) > self.batch_max and await self._write_live_first():
                await self._hand_off_live(wait=False)
            batch: list[RawMessage] = []
            while self._pending and len(batch) < self.batch_size:
                batch.append(self._pending.popleft())
            if not batch:
                continue
            with self._live_lock:
                taken = {id(r) for r in batch}
                self._live = [r for r in self._live if id(r) not in taken]
            began = time.monotonic()
            result = await self._write_until_done(batch)
            self._adapt_batch(len(batch), time.monotonic() - began)
            if result.new_events or result.ended_events:
                self.changed.set()

    def _adapt_batch(self, size: int, took_s: float) -> None:
        if took_s > self.batch_target_s:
            # Too long, whether the batch was full or not: the broker's in-flight window
            # (unacked messages) may hold fewer than a full batch, so a slow box must not
            # wait for a full one to learn that batches take too long for the live lane.
            scaled = int(size * self.batch_target_s / took_s)
            floor = min(BATCH_MIN, self.batch_max)
            self.batch_size = max(floor, min(self.batch_size, scaled))
        elif size >= self.batch_size and took_s < self.batch_target_s / 2:
            self.batch_size = min(self.batch_max, size * 2)
        # (a quick batch smaller than batch_size: the queue ran dry, nothing learnt)

    async def _hand_off_live(self, wait: bool) -> None:
        if self.live_stored is None:
            return
        handoff = asyncio.ensure_future(self.live_stored())
        self._handoffs.add(handoff)
        handoff.add_done_callback(self._handoffs.discard)
        if wait:
            await asyncio.wait([handoff], timeout=LIVE_HANDOFF_S)

    async def _write_priority(self) -> bool:
        batch: list[RawMessage] = []
        while self._priority and len(batch) < self.batch_max:
            batch.append(self._priority.popleft())
        result = await self._write_until_done(batch)
        if result.new_events or result.ended_events:
            self.changed.set()
            return True
        return False

    async def _write_live_first(self) -> bool:
        with self._live_lock:
            batch, self._live = self._live[: self.batch_max], self._live[self.batch_max :]
        if not batch:
            return False
        result = await self._write_until_done(batch, ack=False)
        self._written_early.update(id(r) for r in batch)
        if result.new_events or result.ended_events:
            self.changed.set()
            return True
        return False

    async def _write_until_done(self, batch: list[RawMessage], ack: bool = True) -> BatchResult:
        delay = 0.5
        while True:
            loop = asyncio.get_running_loop()
            work = asyncio.ensure_future(
                loop.run_in_executor(self._executor, self.process, batch, ack)
            )
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                # Shutting down: let the thread finish its transaction before the DB closes.
                await asyncio.wait([work])
                raise
            except Exception as e:  # noqa: BLE001 - e.g. disk full: keep the batch, unacked, and retry
                if _refused_for_good(e):
                    # The same batch would fail forever and hold every site's messages up.
                    log.exception("a batch of %d messages was refused; storing them one by one",
                                  len(batch))  # fmt: skip
                    return await loop.run_in_executor(
                        self._executor, self._process_one_by_one, batch, ack
                    )
                log.exception("writing a batch of %d messages failed; retrying", len(batch))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _process_one_by_one(self, batch: Sequence[RawMessage], ack: bool) -> BatchResult:
        """Store each message on its own; one the database refuses is set aside (worker thread).

        Transient failures (a locked or full database, a lost connection) still raise, and
        the caller retries the rest of the batch as ever.
        """
        total = BatchResult()
        for raw in batch:
            try:
                result = self.process([raw], ack)
            except Exception as e:
                if not _refused_for_good(e):
                    raise
                result = self._set_aside(raw, e, ack)
            total.accepted += result.accepted
            total.duplicates += result.duplicates
            total.rejected += result.rejected
            total.refused_links += result.refused_links
            total.new_events += result.new_events
            total.ended_events += result.ended_events
            total.refused += result.refused
        return total

    def _set_aside(self, raw: RawMessage, error: Exception, ack: bool) -> BatchResult:
        """Count one refused message as rejected, keep its bytes, acknowledge it."""
        where = "not kept (no unstored_dir)"
        if self.unstored_dir is not None:
            digest = hashlib.sha256(raw.topic.encode() + b"\n" + raw.payload).hexdigest()[:16]
            path = self.unstored_dir / f"{int(raw.received_at)}-{digest}.mqtt"
            try:
                self.unstored_dir.mkdir(parents=True, exist_ok=True)
                path.write_bytes(raw.topic.encode() + b"\n" + raw.payload)
                where = f"kept in {path.name}"
            except OSError as e:
                where = f"not kept ({e.strerror})"
        reason = f"the database refused it ({type(error).__name__}: {error}); {where}"
        reason = reason.replace("\x00", "\\u0000")[:500]
        log.error("set aside a message on %s: %s", raw.topic[:200], reason)
        rejection = Rejection(raw.topic, reason, len(raw.payload), raw.received_at)
        result = self.store.write_batch([], [rejection])
        if ack:
            acker = self._live_acker if raw.live else self._acker
            if acker is not None:
                acker(raw.mid, raw.qos)
        return result

    def process(self, batch: Sequence[RawMessage], ack: bool = True) -> BatchResult:
        """Decode, write and (unless `ack` is False) acknowledge one batch (worker thread).

        Messages the live lane already stored are acknowledged here, not written again.
        """
        early = self._written_early
        todo = [raw for raw in batch if id(raw) not in early] if early else list(batch)
        accepted, rejected = decode_batch(todo)
        for r in rejected:
            log.warning("rejected on %s: %s", r.topic[:200], r.reason[:300])
        result = self.store.write_batch(accepted, rejected)
        if self.hooks is not None:
            self._call_hooks(self.hooks, accepted)
        if ack:
            for raw in batch:
                early.discard(id(raw))
                acker = self._live_acker if raw.live else self._acker
                if acker is not None:
                    acker(raw.mid, raw.qos)
        return result

    @staticmethod
    def _call_hooks(hooks: IngestHooks, accepted: Sequence[Received]) -> None:
        for item in accepted:
            payload, site = item.message.payload, item.message.topic.site
            try:
                if isinstance(payload, CameraStatePayload):
                    hooks.on_camera_state(site, payload)
                elif isinstance(payload, HeartbeatPayload):
                    hooks.on_heartbeat(site, payload)
            except Exception:  # noqa: BLE001 - the message is stored; a hook must not stop ingest
                log.exception("ingest hook failed for %s", item.message.topic.kind)


@asynccontextmanager
async def running_ingest(
    config: CentralConfig, ingest: Ingest, password: str, leases: Leases | None = None
) -> AsyncIterator[BrokerClient]:
    """Connect to the broker and drain into the database until the block exits.

    Every node drains what its own connections deliver (a shared subscription when
    `cluster.shared`: each message to one node); the alert feed runs on the node
    that holds its lease (`leases`, several nodes) or simply here (None, a single node).
    """
    node = node_id(config) if config.cluster.shared else None
    client = BrokerClient(config.mqtt, password, ingest.deliver, node=node)
    live = BrokerClient(config.mqtt, password, ingest.deliver, live=True, node=node)
    clients = [client, live] if config.mqtt.live_lane else [client]
    ingest.set_acker(client.ack, live.ack)
    tasks = [asyncio.create_task(ingest.run(), name="ingest-drain")]
    renew = config.cluster.renew_s
    feed = None
    if ingest.hooks is not None:
        feed = HookFeed(ingest.store, ingest.hooks)
        busy = lambda: ingest.backlog > 0  # noqa: E731
        work = functools.partial(feed.run, ingest.changed, busy)
        tasks.append(asyncio.create_task(lead(leases, ALERT_FEED, work, renew), name="alert-feed"))
        ingest.live_stored = feed.feed_live_now
        feed.live_waiting = ingest.live_waiting
    if node is not None and leases is not None:
        # This node's lease says it is alive; a dead node's sessions are adopted and drained.
        alive = lead(leases, NODE_LEASE + node, run_forever, renew, release=False)
        tasks.append(asyncio.create_task(alive, name="node-alive"))
        process = functools.partial(ingest.process, ack=False)
        adopt = adopt_dead_nodes(config, password, leases, process)
        tasks.append(asyncio.create_task(adopt, name="adopt-sessions"))
    for c in clients:
        await asyncio.to_thread(c.start)
    try:
        yield client
    finally:
        for c in clients:
            await asyncio.to_thread(c.stop)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Nothing is handed to their threads any more: end them (a round still running in
        # one finishes first, before the database is closed).
        await ingest.close()
        if feed is not None:
            await feed.close()
