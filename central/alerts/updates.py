"""Live updates for the pages: alert and camera changes fanned out in memory to open sockets.

Each browser tab opens one WebSocket (`/api/v1/updates`). Its scope (an org path, or the
whole tree) is fixed when it connects; subscribers are kept by scope root, so a change is
matched by looking up the roots above its org path (a few dictionary reads), framed once
and the same bytes written to each matching socket: no database query, no serialisation and
no task wake-up per client per change.

A socket's write buffer is bounded: a client that cannot keep up is closed with SLOW_CLOSE_CODE
and the page reconnects and re-syncs with one list request. Logging out closes the
session's sockets at once; a periodic check (one query for all open sockets) closes those
whose session expired, was revoked or whose user was disabled, and notes the others as
used, as the pages' polling did before. A session's video sockets (live and replay viewers)
are `hold`-ed here too, and end with it the same way.

Several nodes on PostgreSQL share their changes (central.alerts.update_relay): `publish`
hands each change to the relay as well, and the relay delivers the other nodes' changes
through `deliver`, where they meet this node's sockets and their scopes like local ones.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from central.regulation.scope import Scope, ancestors
from central.schema import LockedDb

log = logging.getLogger(__name__)

WRITE_BUFFER_MAX = 256 * 1024  # bytes waiting for one socket before it counts as too slow
SLOW_CLOSE_CODE = 4008  # the client fell behind: reconnect and re-sync
SESSION_CLOSE_CODE = 4401  # the session ended (logout, expiry, disabled user): sign in again
LIMIT_CLOSE_CODE = 4429  # too many sockets open for one user
MAX_PER_USER = 32  # open update sockets per user (one per tab)
SESSION_CHECK_S = 30.0
SESSION_TOUCH_S = 60.0
CLOSE_WAIT_S = 5.0  # how long a socket the hub closes may take for the close handshake
RESYNC_CLOSE_CODE = 1012  # changes may have been missed: reconnect and re-sync ("restart")

# Hands a change (org path, message) to the other nodes; called from any thread.
Relay = Callable[[str | None, dict[str, Any]], None]


def text_frame(text: str) -> bytes:
    """One unmasked WebSocket text frame (server to client, RFC 6455 section 5.2)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes([0x81, size])
    elif size < 1 << 16:
        header = bytes([0x81, 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x81, 127]) + size.to_bytes(8, "big")
    return header + payload


@dataclass(eq=False)
class Subscriber:
    """One open socket: its scope root, session and the transport its frames go out on.

    A change is framed once and the same bytes are written to every matching socket's
    transport (frames from server to client are not masked); aiohttp writes its own frames
    (pings, the close) whole and synchronously, so they never interleave with ours. The
    transport's write buffer is the bounded queue: past WRITE_BUFFER_MAX the client is too slow.
    """

    ws: web.WebSocketResponse
    root: str | None
    token_hash: str
    user_id: int
    transport: asyncio.BaseTransport | None = None
    closing: int | None = None  # the close code once the hub decided to close it
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, frame: bytes) -> bool:
        """Write one frame; False (and marked for closing) if the client fell behind."""
        transport = self.transport
        if self.closing is not None or not isinstance(transport, asyncio.WriteTransport):
            return False
        if transport.is_closing():
            return False
        if transport.get_write_buffer_size() > WRITE_BUFFER_MAX:
            self.close_soon(SLOW_CLOSE_CODE)
            return False
        transport.write(frame)
        return True

    def close_soon(self, code: int) -> None:
        """Stop writing to it and have its handler close the socket with `code`."""
        if self.closing is None:
            self.closing = code
            self.closed.set()


class UpdateHub:
    """Subscribers by scope root; changes come from any thread through `publish`."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._by_root: dict[str | None, set[Subscriber]] = {}
        self._by_session: dict[str, set[Subscriber]] = {}
        self._held: dict[str, set[Callable[[], None]]] = {}  # other sockets' closers by session
        self._per_user: dict[int, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock = clock
        self.relay: Relay | None = None  # set on several nodes: the other nodes hear it too
        self.sent = 0
        self.dropped_slow = 0
        self.fan_out_s: deque[float] = deque(maxlen=1000)  # time on the loop per change

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the sockets live on (publish hands changes to it)."""
        self._loop = loop

    @property
    def count(self) -> int:
        """Open sockets."""
        return sum(len(s) for s in self._by_root.values())

    # --- changes in -------------------------------------------------------------------------

    def publish(self, org_path: str | None, message: dict[str, Any]) -> None:
        """Send `message` to every socket whose scope holds `org_path` (any thread), on this
        node and, through the relay, on the others."""
        if self.relay is not None:
            self.relay(org_path, message)
        loop = self._loop
        if loop is None or loop.is_closed() or not self._by_root:
            return
        frame = text_frame(json.dumps(message, ensure_ascii=False, separators=(",", ":")))
        try:
            loop.call_soon_threadsafe(self._fan_out, org_path, frame)
        except RuntimeError:  # the loop is closing: nobody is listening any more
            pass

    def deliver(self, org_path: str | None, message: dict[str, Any]) -> None:
        """Another node's change, for this node's sockets only (event loop thread)."""
        if self._by_root:
            frame = text_frame(json.dumps(message, ensure_ascii=False, separators=(",", ":")))
            self._fan_out(org_path, frame)

    def resync(self, org_path: str | None = None) -> int:
        """Close the sockets whose scope holds `org_path` (None: all) with RESYNC_CLOSE_CODE:
        changes were missed and the pages list again once reconnected (event loop thread)."""
        subs = self._matching(org_path) if org_path is not None else self._all()
        for sub in subs:
            sub.close_soon(RESYNC_CLOSE_CODE)
        return len(subs)

    def _matching(self, org_path: str) -> list[Subscriber]:
        roots: list[str | None] = [None, *ancestors(org_path)]
        return [sub for root in roots for sub in self._by_root.get(root, ())]

    def _all(self) -> list[Subscriber]:
        return [sub for subs in self._by_root.values() for sub in subs]

    def alert_changed(self, op: str, alert: dict[str, Any], open_alerts: int | None) -> None:
        """A new or changed alert, and its camera's open-alert counter (AlertStore.announce)."""
        org_path = alert.get("org_path")
        self.publish(org_path, {"type": "alert", "op": op, "alert": alert})
        if open_alerts is not None and alert.get("camera_id"):
            camera = {"site_id": alert["site_id"], "camera_id": alert["camera_id"]}
            self.publish(org_path, {"type": "camera", **camera, "open_alerts": open_alerts})

    def camera_state(self, org_path: str, site: str, camera: str, state: str) -> None:
        """A camera went online or offline (the wall's dots)."""
        message = {"type": "camera", "site_id": site, "camera_id": camera, "state": state}
        self.publish(org_path, message)

    def _fan_out(self, org_path: str | None, frame: bytes) -> None:
        started = time.perf_counter()
        roots: list[str | None] = [None]
        if org_path:
            roots += ancestors(org_path)
        for root in roots:
            for sub in self._by_root.get(root, ()):
                if sub.offer(frame):
                    self.sent += 1
                elif sub.closing == SLOW_CLOSE_CODE:
                    self.dropped_slow += 1
        self.fan_out_s.append(time.perf_counter() - started)

    # --- sockets ----------------------------------------------------------------------------

    def admit(self, user_id: int) -> bool:
        """True if the user may open one more socket."""
        return self._per_user.get(user_id, 0) < MAX_PER_USER

    def add(self, sub: Subscriber) -> None:
        """Register an open socket."""
        self._by_root.setdefault(sub.root, set()).add(sub)
        self._by_session.setdefault(sub.token_hash, set()).add(sub)
        self._per_user[sub.user_id] = self._per_user.get(sub.user_id, 0) + 1

    def remove(self, sub: Subscriber) -> None:
        """Forget a socket that ended."""
        by_root = self._by_root.get(sub.root)
        if by_root is not None:
            by_root.discard(sub)
            if not by_root:
                del self._by_root[sub.root]
        by_session = self._by_session.get(sub.token_hash)
        if by_session is not None:
            by_session.discard(sub)
            if not by_session:
                del self._by_session[sub.token_hash]
        left = self._per_user.get(sub.user_id, 1) - 1
        if left > 0:
            self._per_user[sub.user_id] = left
        else:
            self._per_user.pop(sub.user_id, None)

    def hold(self, token_hash: str, close: Callable[[], None]) -> Callable[[], None]:
        """Tie another socket of a session (a video viewer's) to it: `close` is called when
        the session ends, like its update sockets are closed; returns the call that unties it
        (event loop thread)."""
        self._held.setdefault(token_hash, set()).add(close)

        def untie() -> None:
            held = self._held.get(token_hash)
            if held is not None:
                held.discard(close)
                if not held:
                    del self._held[token_hash]

        return untie

    def end_session(self, token_hash: str) -> int:
        """Close every socket of a session (logout); returns how many (event loop thread)."""
        subs = list(self._by_session.get(token_hash, ()))
        for sub in subs:
            sub.close_soon(SESSION_CLOSE_CODE)
        held = list(self._held.pop(token_hash, ()))
        for close in held:
            close()
        if held:
            log.info("closed %d video socket(s) of an ended session", len(held))
        return len(subs) + len(held)

    def close_all(self, code: int = 1001) -> None:
        """Close every socket (shutdown: "going away", the pages reconnect)."""
        for sub in self._all():
            sub.close_soon(code)

    async def serve(self, sub: Subscriber, hello: dict[str, Any]) -> None:
        """Run one prepared socket until it or the hub closes it."""
        await sub.ws.send_str(json.dumps(hello, ensure_ascii=False))
        self.add(sub)
        closer = asyncio.create_task(self._close_when_told(sub), name="updates-close")
        try:
            async for _msg in sub.ws:
                pass  # clients only listen; aiohttp answers pings
        finally:
            self.remove(sub)
            if sub.closing is None:  # the client closed it
                sub.closing = 1000
                closer.cancel()
            else:
                # The hub closes it: the close handshake finishes with its code (cancelled
                # half way, the client would only see the connection drop).
                await asyncio.wait({closer}, timeout=CLOSE_WAIT_S)
                closer.cancel()
            await asyncio.gather(closer, return_exceptions=True)

    @staticmethod
    async def _close_when_told(sub: Subscriber) -> None:
        await sub.closed.wait()
        code = sub.closing or 1000
        reason = {SLOW_CLOSE_CODE: b"too slow", SESSION_CLOSE_CODE: b"session ended"}
        try:
            await sub.ws.close(code=code, message=reason.get(code, b""))
        except (ConnectionError, RuntimeError):
            pass  # the client went away meanwhile

    # --- sessions ---------------------------------------------------------------------------

    def check_sessions(self, ldb: LockedDb, idle_s: float) -> list[str]:
        """Sessions of open sockets that ended (worker thread); notes the live ones as used.

        One read for all open sockets; the use is written at most every SESSION_TOUCH_S.
        """
        digests = list({*self._by_session, *self._held})
        if not digests:
            return []
        now = self._clock()
        live: dict[str, float] = {}
        with ldb.read() as db:
            for i in range(0, len(digests), 500):
                part = digests[i : i + 500]
                marks = ", ".join("?" for _ in part)
                for row in db.query(
                    "select s.token_hash, s.expires_at, s.last_used_at, s.purpose, u.disabled "
                    f"from user_sessions s join users u on u.id = s.user_id "
                    f"where s.token_hash in ({marks})",
                    part,
                ):
                    used = row["last_used_at"] or 0.0
                    idle = row["purpose"] == "session" and now - used > idle_s + SESSION_CHECK_S
                    if row["expires_at"] >= now and not row["disabled"] and not idle:
                        live[row["token_hash"]] = used
        stale = [d for d, used in live.items() if now - used > SESSION_TOUCH_S]
        if stale:
            with ldb.transaction() as db:
                db.conn.executemany(
                    "update user_sessions set last_used_at = ? where token_hash = ?",
                    [(now, d) for d in stale],
                )
        return [d for d in digests if d not in live]

    async def close_ended_sessions(self, ldb: LockedDb, idle_s: float) -> int:
        """Close the sockets of sessions that ended; returns how many sessions."""
        ended = await asyncio.to_thread(self.check_sessions, ldb, idle_s)
        for digest in ended:
            self.end_session(digest)
        return len(ended)

    async def watch_sessions(self, ldb: LockedDb, idle_s: float) -> None:
        """Every SESSION_CHECK_S, close the sockets of sessions that ended (until cancelled)."""
        while True:
            await asyncio.sleep(SESSION_CHECK_S)
            try:
                await self.close_ended_sessions(ldb, idle_s)
            except Exception:  # noqa: BLE001 - e.g. the database is busy: next round
                log.exception("checking the sessions of open sockets failed")


def scope_root(scope: Scope) -> str | None:
    """The subscriber key of a scope."""
    return scope.root
