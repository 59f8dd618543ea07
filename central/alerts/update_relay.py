"""Page updates shared between nodes: PostgreSQL LISTEN/NOTIFY on one channel.

Each node's update hub fans a change out to its own sockets at once, and hands it to the
relay, which NOTIFYs it on CHANNEL with the node's id. Every node LISTENs on that channel and
delivers the other nodes' changes to its own sockets, applying each socket's scope exactly as
for a local change (the hub matches the change's org path against the sockets' scope roots).

Two connections per node, both in autocommit: one that only listens, one that sends. A
connection that drops (or, by TCP keepalives, goes silent) is opened again after a short
pause (1, 2, 4 ... 10 s). Changes sent while the listener was down are lost to it, so when it
is listening again the node closes its update sockets with RESYNC_CLOSE_CODE and the pages
reconnect and list again. A change too big for a notification (PostgreSQL takes fewer than
8,000 bytes) is sent as a re-sync of its org path: the other nodes close the sockets that
would have received it, with the same code.

A single node, or several on SQLite, uses no relay: nothing changes there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import psycopg

from central.alerts.updates import UpdateHub

log = logging.getLogger(__name__)

CHANNEL = "fsv_page_updates"
MAX_PAYLOAD = 7900  # bytes (PostgreSQL's limit is 8,000)
QUEUE_MAX = 10_000  # changes waiting to be sent; past it the oldest are dropped
BATCH = 200  # changes sent in one statement
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 10.0


def encode(node: str, org_path: str | None, message: dict[str, Any]) -> str:
    """The notification of one change (a re-sync of `org_path` if the change is too big)."""
    body = {"n": node, "o": org_path, "m": message}
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) <= MAX_PAYLOAD:
        return text
    return json.dumps({"n": node, "o": org_path, "resync": True}, separators=(",", ":"))


class UpdateRelay:
    """Sends this node's page changes to the other nodes and delivers theirs to `hub`."""

    def __init__(self, url: str, node: str, hub: UpdateHub) -> None:
        self._url = url
        self.node = node
        self._hub = hub
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self.listening = asyncio.Event()
        self.sent = 0
        self.received = 0
        self.dropped = 0
        self.resyncs = 0

    async def _connect(self, role: str) -> psycopg.AsyncConnection[Any]:
        """A connection named after its role and node (seen in pg_stat_activity)."""
        name = f"fsv-updates-{role}-{self.node}"
        # TCP keepalives: a listener whose server vanished without a word (a cut cable)
        # notices within about 25 s and connects again, rather than waiting for ever.
        return await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, application_name=name,
            keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
        )  # fmt: skip

    # --- out --------------------------------------------------------------------------------

    def send(self, org_path: str | None, message: dict[str, Any]) -> None:
        """Queue one change for the other nodes (any thread; the hub's relay)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        payload = encode(self.node, org_path, message)
        try:
            loop.call_soon_threadsafe(self._enqueue, payload)
        except RuntimeError:  # the loop is closing
            pass

    def _enqueue(self, payload: str) -> None:
        if self._queue.qsize() >= QUEUE_MAX:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(payload)

    async def _send_forever(self) -> None:
        delay = RETRY_FIRST_S
        lost = False
        while True:
            try:
                async with await self._connect("out") as conn:
                    delay = RETRY_FIRST_S
                    while True:
                        batch = [await self._queue.get()]
                        if lost:  # a batch may have been lost with the connection
                            batch.insert(0, json.dumps({"n": self.node, "o": None, "resync": True}))
                            lost = False
                        while len(batch) < BATCH and not self._queue.empty():
                            batch.append(self._queue.get_nowait())
                        # In order, in one statement (one transaction: delivered together).
                        await conn.execute(
                            "select pg_notify(%s, p) from unnest(%s::text[]) with ordinality "
                            "as t(p, i) order by i",
                            [CHANNEL, batch],
                        )
                        self.sent += len(batch)
            except (psycopg.Error, OSError) as e:
                log.warning("page updates to the other nodes: %s; again in %.0f s", e, delay)
                lost = True
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)

    # --- in ---------------------------------------------------------------------------------

    def _received(self, payload: str) -> None:
        try:
            body = json.loads(payload)
        except ValueError:
            log.warning("page update from another node is no JSON: %.80s", payload)
            return
        if not isinstance(body, dict) or body.get("n") == self.node:
            return  # our own change: our sockets had it already
        org_path = body.get("o")
        self.received += 1
        if body.get("resync"):
            self.resyncs += 1
            self._hub.resync(org_path)
        elif isinstance(body.get("m"), dict):
            self._hub.deliver(org_path, body["m"])

    async def _listen_forever(self) -> None:
        delay = RETRY_FIRST_S
        first = True
        while True:
            try:
                async with await self._connect("in") as conn:
                    await conn.execute(f"listen {CHANNEL}")
                    delay = RETRY_FIRST_S
                    if not first:  # what the other nodes sent meanwhile was missed
                        log.info("listening to the other nodes' page updates again")
                        self.resyncs += 1
                        self._hub.resync()
                    first = False
                    self.listening.set()
                    async for note in conn.notifies():
                        self._received(note.payload)
            except (psycopg.Error, OSError) as e:
                log.warning("page updates from the other nodes: %s; again in %.0f s", e, delay)
            self.listening.clear()
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)

    # --- running ----------------------------------------------------------------------------

    def start(self) -> list[asyncio.Task[None]]:
        """Attach to the running loop and the hub; the sender and listener tasks."""
        self._loop = asyncio.get_running_loop()
        self._hub.relay = self.send
        return [
            asyncio.create_task(self._send_forever(), name="page-updates-out"),
            asyncio.create_task(self._listen_forever(), name="page-updates-in"),
        ]
