"""The outbox publisher thread: drains the outbox in order, deletes only what the broker acked."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from edge_agent.mqtt.outbox import Outbox, OutboxMessage
from fsv_contract import live, topics

log = logging.getLogger(__name__)

POLL_S = 1.0  # rows written by another process (or after a restart) are found this often
HOUSEKEEPING_S = 60.0


class Link(Protocol):
    """What the publisher needs of the MQTT connection (MqttLink)."""

    connected: threading.Event
    on_ack: Callable[[int, bool, str], None] | None

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int | None:
        """Hand a message to the client; its message id, or None if refused."""
        ...

    def add_connect_listener(self, callback: Callable[[], None]) -> None:
        """Be told after each (re)connect."""
        ...


@dataclass
class _InFlight:
    row_id: int
    message: OutboxMessage
    sent_at: float
    live: bool = False  # sent on the live lane


def live_topic(message: OutboxMessage, now: float) -> str | None:
    """The live-lane topic for an event's start phase sent within the contract's send window
    (fsv_contract.live), else None."""
    lane = topics.live_lane_of(message.topic)
    if lane is None or not live.send_live(message.payload, now):
        return None
    return lane


class OutboxPublisher:
    """Publishes outbox rows at QoS 1 in id order (so in order per camera), a window at a time.

    Acks arrive on paho's thread and are only queued; this thread deletes acked rows in one
    transaction per round. Messages paho holds while disconnected are re-sent by paho on
    reconnect; one that got no ack `resend_after_s` after it was sent while connected is
    published again (central drops the duplicate). A message the broker refuses (e.g. not
    authorised) stays in the outbox and is retried after `resend_after_s`.

    An event's start phase sent within the live window goes on the live lane (contract
    `camera/{id}/live`). If the broker refuses that topic (an ACL from before the lane), the
    message is sent again at once on its own topic and the lane is not used again.
    """

    name = "mqtt-publisher"

    def __init__(
        self,
        outbox: Outbox,
        link: Link,
        window: int = 20,
        resend_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.outbox = outbox
        self.link = link
        self.window = window
        self.resend_after_s = resend_after_s
        self._clock = clock
        self._acks: queue.SimpleQueue[tuple[int, bool, str]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._reconnected = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inflight: dict[int, _InFlight] = {}
        self._refused: dict[int, tuple[OutboxMessage, float]] = {}  # row id -> (msg, retry at)
        self._cursor = 0
        self.published = 0
        self.acked = 0
        self.live_sent = 0
        self.live_lane = True  # False once the broker refused the live lane
        self._wall: Callable[[], float] = time.time
        link.on_ack = self._on_ack
        link.add_connect_listener(self._on_connect)
        outbox.add_listener(self._wake.set)

    # --- component -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the publisher thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, flush_s: float = 2.0) -> None:
        """Stop the thread, after up to `flush_s` to send what waits (if connected).

        Whatever is not acknowledged by then stays in the outbox for the next start.
        """
        deadline = self._clock() + flush_s
        while self.link.connected.is_set() and self._clock() < deadline:
            if not self._inflight and self.outbox.count() == 0:
                break
            self._wake.set()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None

    @property
    def inflight(self) -> int:
        """Messages handed to the broker and not yet acknowledged."""
        return len(self._inflight)

    # --- the loop --------------------------------------------------------------------------

    def _on_connect(self) -> None:
        self._reconnected.set()
        self._wake.set()

    def _on_ack(self, mid: int, accepted: bool, reason: str) -> None:
        self._acks.put((mid, accepted, reason))
        self._wake.set()

    def _loop(self) -> None:
        next_housekeeping = self._clock()
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._take_acks()
                if self._clock() >= next_housekeeping:
                    next_housekeeping = self._clock() + HOUSEKEEPING_S
                    self.outbox.enforce_limits()
                if self._reconnected.is_set():
                    self._reconnected.clear()
                    self._restart_timers()
                if self.link.connected.is_set():
                    self._resend_overdue()
                    self._send_more()
            except Exception:  # noqa: BLE001 - a bad round (disk full, DB locked) is retried
                log.exception("outbox publisher round failed; retrying")
                self._stop.wait(POLL_S)
            self._wake.wait(POLL_S)

    def _take_acks(self) -> None:
        done: list[int] = []
        while True:
            try:
                mid, accepted, reason = self._acks.get_nowait()
            except queue.Empty:
                break
            entry = self._inflight.pop(mid, None)
            if entry is None:
                continue  # the agent-state message, or an ack after a resend
            if accepted:
                done.append(entry.row_id)
            elif entry.live:
                log.warning(
                    "broker refused the live lane (%s): %s; sending on %s and no longer "
                    "using the lane (re-run `central-server init-broker` to allow it)",
                    topics.live_lane_of(entry.message.topic),
                    reason,
                    entry.message.topic,
                )
                self.live_lane = False
                if not self._send(entry.message):
                    self._refused[entry.row_id] = (entry.message, self._clock())
            else:
                log.error("broker refused %s: %s; retrying later", entry.message.topic, reason)
                retry_at = self._clock() + self.resend_after_s
                self._refused[entry.row_id] = (entry.message, retry_at)
        if done:
            self.outbox.ack(done)
            self.acked += len(done)

    def _send_more(self) -> None:
        free = self.window - len(self._inflight)
        if free <= 0:
            return
        now = self._clock()
        for row_id, (message, retry_at) in list(self._refused.items()):
            if free > 0 and retry_at <= now and self._send(message):
                del self._refused[row_id]
                free -= 1
        if free <= 0:
            return
        for message in self.outbox.pending(after_id=self._cursor, limit=free):
            if not self._send(message):
                break
            self._cursor = message.id

    def _send(self, message: OutboxMessage) -> bool:
        lane = live_topic(message, self._wall()) if self.live_lane else None
        topic = lane or message.topic
        mid = self.link.publish(topic, message.payload, message.qos, message.retain)
        if mid is None:
            return False
        self._inflight[mid] = _InFlight(message.id, message, self._clock(), live=lane is not None)
        self.published += 1
        self.live_sent += lane is not None
        return True

    def _restart_timers(self) -> None:
        # paho re-sends what it holds on reconnect; give those the full time to be acked
        now = self._clock()
        for entry in self._inflight.values():
            entry.sent_at = now

    def _resend_overdue(self) -> None:
        now = self._clock()
        overdue = [m for m, e in self._inflight.items() if now - e.sent_at > self.resend_after_s]
        for mid in overdue:
            entry = self._inflight.pop(mid)
            log.warning(
                "no ack for %s after %.0f s; publishing it again",
                entry.message.topic,
                now - entry.sent_at,
            )
            if not self._send(entry.message):
                self._inflight[mid] = entry
                break
