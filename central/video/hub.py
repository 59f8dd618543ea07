"""The relay hub: one upstream per (site, camera, stream, mode), started and stopped on demand.

A viewer's request opens (or joins) an upstream: central sends `stream_start` with a
one-time token over MQTT and the edge dials in with it. When the last viewer leaves, the
upstream lingers (a viewer flipping pages comes back at once), then the edge is told to
stop. A watchdog restarts an upstream whose edge never connected or went silent.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from central.video.upstream import StreamKey, Uplink, Upstream
from fsv_contract.video import VERB_STREAM_START, VERB_STREAM_STOP, End, StreamStartArgs

log = logging.getLogger(__name__)

HEALTHY_S = 60.0  # an upstream streaming this long has its restart count forgotten

Sender = Callable[[str, str, dict[str, Any]], str]  # (site, verb, args) -> request id
ReplyReader = Callable[[str], dict[str, Any] | None]  # request id -> command row with reply


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def new_token(prefix: str = "") -> str:
    """A one-time uplink token (256 random bits, URL-safe), after `prefix`.

    With several nodes the prefix is `{node_id}-`: the load balancer sends the edge's uplink
    to the node that asked for it (configs/haproxy.cfg), the only one that knows the token.
    """
    return prefix + secrets.token_urlsafe(32)


class VideoHub:
    """Every upstream of central, by key and by pending token (event loop only)."""

    def __init__(
        self,
        send: Sender,
        reply: ReplyReader,
        *,
        linger_s: float = 10.0,
        start_timeout_s: float = 15.0,
        stall_s: float = 8.0,
        max_restarts: int = 3,
        tick_s: float = 0.5,
    ) -> None:
        self._send = send
        self._reply = reply
        self.linger_s = linger_s
        self.start_timeout_s = start_timeout_s
        self.stall_s = stall_s
        self.max_restarts = max_restarts
        self.tick_s = tick_s
        self._upstreams: dict[StreamKey, Upstream] = {}
        self._tokens: dict[str, Upstream] = {}
        self.commands_sent = 0
        self.token_prefix = ""  # `{node_id}-` with several nodes (see new_token)

    # --- viewers' side ---------------------------------------------------------------------

    async def open(
        self, key: StreamKey, start: float | None = None, speed: float = 1.0
    ) -> Upstream:
        """The upstream for `key`, started if needed (a live one is shared)."""
        upstream = self._upstreams.get(key)
        if upstream is not None and upstream.state != "ended":
            return upstream
        upstream = Upstream(key, new_token(self.token_prefix), start, speed)
        self._upstreams[key] = upstream
        await self._request(upstream)
        return upstream

    def release(self, upstream: Upstream, sink: Any) -> None:
        """A viewer left; the watchdog stops the upstream after the linger."""
        upstream.remove_viewer(sink)

    def upstreams(self) -> list[Upstream]:
        """Every upstream now (starting or streaming)."""
        return list(self._upstreams.values())

    def find(self, key: StreamKey) -> Upstream | None:
        """The running upstream of `key`, if any."""
        return self._upstreams.get(key)

    # --- the edge's side -------------------------------------------------------------------

    def claim(self, token: str) -> Upstream | None:
        """The upstream a connecting edge's token opens (once); None if unknown or stale."""
        upstream = self._tokens.pop(token, None)
        if upstream is None or upstream.state == "ended":
            return None
        if upstream.uplink is not None:
            return None  # a second connection for one token
        return upstream

    def connected(self, upstream: Upstream, uplink: Uplink) -> None:
        """The edge's socket for `upstream` is open."""
        upstream.uplink = uplink
        upstream.last_data_at = time.monotonic()

    def disconnected(self, upstream: Upstream, uplink: Uplink, end: End | None) -> None:
        """The edge's socket closed; with an `end` message the upstream is over."""
        if upstream.uplink is not uplink:
            return  # an old socket of an upstream that was restarted meanwhile
        upstream.uplink = None
        if end is not None and (
            end.reason.startswith("done")
            or not upstream.key.shared
            or end.reason.startswith("error")
        ):
            self._finish(upstream, end.reason)
        elif upstream.state != "ended":
            upstream.last_data_at = 0.0  # the watchdog restarts it at its next tick

    # --- lifecycle -------------------------------------------------------------------------

    async def _request(self, upstream: Upstream) -> None:
        key = upstream.key
        upstream.token = new_token(self.token_prefix)
        upstream.state = "starting"
        upstream.requested_at = upstream.last_data_at = time.monotonic()
        self._tokens[upstream.token] = upstream
        args = StreamStartArgs(
            token=upstream.token,
            camera=key.camera,
            stream="main" if key.stream == "main" else "sub",
            mode="live" if key.shared else "replay",
            start=_utc(upstream.last_wall if upstream.last_wall is not None else upstream.start),
            speed=upstream.speed,
            expires_at=_utc(time.time() + self.start_timeout_s),
        )
        try:
            upstream.request_id = await asyncio.to_thread(
                self._send,
                key.site,
                VERB_STREAM_START,
                args.model_dump(mode="json", exclude_none=True),
            )
            self.commands_sent += 1
        except Exception as e:  # noqa: BLE001 - broker/database trouble: the watchdog retries
            log.warning("%s: stream_start not sent: %s", key.label(), e)
            upstream.request_id = None

    async def stop(self, upstream: Upstream, reason: str) -> None:
        """End an upstream: tell the edge, tell the viewers."""
        self._finish(upstream, reason)
        uplink = upstream.uplink
        upstream.uplink = None
        if uplink is not None:
            await uplink.close(reason)
        else:
            await self._send_stop(upstream)

    async def _send_stop(self, upstream: Upstream) -> None:
        try:
            await asyncio.to_thread(
                self._send, upstream.key.site, VERB_STREAM_STOP, {"token": upstream.token}
            )
        except Exception as e:  # noqa: BLE001 - the edge's uplink times out on its own
            log.debug("stream_stop not sent: %s", e)

    def _finish(self, upstream: Upstream, reason: str) -> None:
        if upstream.state == "ended":
            return
        upstream.state = "ended"
        upstream.ended_reason = reason
        self._tokens.pop(upstream.token, None)
        if self._upstreams.get(upstream.key) is upstream:
            del self._upstreams[upstream.key]
        upstream.finish(End(reason=reason[:500]).model_dump_json())
        log.info("%s: upstream ended: %s", upstream.key.label(), reason)

    async def run(self) -> None:
        """The watchdog: lingering, start timeouts, silent uplinks, refused commands."""
        while True:
            await asyncio.sleep(self.tick_s)
            for upstream in self.upstreams():
                try:
                    await self._check(upstream, time.monotonic())
                except Exception:  # noqa: BLE001 - one upstream's trouble must not stop the rest
                    log.exception("%s: watchdog check failed", upstream.key.label())

    async def _check(self, upstream: Upstream, now: float) -> None:
        if upstream.idle_since is not None and not self._leased(upstream, now):
            linger = self.linger_s if upstream.key.shared else 0.0
            if now - upstream.idle_since >= linger:
                await self.stop(upstream, "no viewers")
                return
        if upstream.state == "starting":
            if await self._refused(upstream):
                return
            if now - upstream.requested_at > self.start_timeout_s:
                await self._restart(upstream, "the edge did not connect")
        elif upstream.state == "streaming":
            if now - upstream.last_data_at > self.stall_s:
                await self._restart(upstream, "the uplink went silent")
            elif now - upstream.requested_at > HEALTHY_S:
                upstream.restarts = 0

    @staticmethod
    def _leased(upstream: Upstream, now: float) -> bool:
        if upstream.hls is None:
            return False
        if now < upstream.hls_lease_until:
            return True
        upstream.hls = None  # every HLS player went away
        return False

    async def _refused(self, upstream: Upstream) -> bool:
        if upstream.request_id is None:
            return False
        row = await asyncio.to_thread(self._reply, upstream.request_id)
        if row is None or row.get("replied_at") is None or row.get("ok"):
            return False
        await self.stop(upstream, f"error: {row.get('error') or 'the edge refused'}")
        return True

    async def _restart(self, upstream: Upstream, why: str) -> None:
        upstream.restarts += 1
        if upstream.restarts > self.max_restarts:
            await self.stop(upstream, f"error: {why} ({upstream.restarts - 1} restarts)")
            return
        log.warning("%s: %s; restarting the upstream", upstream.key.label(), why)
        self._tokens.pop(upstream.token, None)
        old = upstream.uplink
        upstream.uplink = None
        if old is not None:
            await old.close(why)
        await self._request(upstream)

    async def close(self) -> None:
        """Stop every upstream (shutdown)."""
        for upstream in self.upstreams():
            await self.stop(upstream, "central is shutting down")
