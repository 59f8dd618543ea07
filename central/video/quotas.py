"""Quotas on video work: concurrent replays and live streams per user, exports per hour per
user and per site, and each user's share of a site's uplink.

Every replay is an upstream of its own and every new live stream one more; each is carried by
the supervised site's uplink, which is slow and also carries its alerts and uploads. Without
limits one account (forty replays and forty exports were tried) fills the uplink and the edge
box's command queue. Refusals are `QuotaExceeded` (HTTP 429 with a message saying which limit
and what to do); a WebSocket viewer gets the same message in-band (`quota_error_message`),
since browsers cannot read the body of a refused upgrade.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from typing import Literal

from central.errors import CentralError, ThrottledError
from central.settings import VideoQuotaConfig
from central.storage.db import CentralDatabase
from central.video.hub import VideoHub
from central.video.upstream import StreamKey

ViewerKind = Literal["live", "replay"]
RETRY_S = 30.0
# Exports the edge still cuts or uploads: they use the uplink like a stream.
_RUNNING = ("requested", "receiving")


class QuotaExceeded(ThrottledError):
    """A video quota is used up; the message names the limit, `retry_after` when to try again."""

    def __init__(self, message: str, retry_after: float = RETRY_S) -> None:
        CentralError.__init__(self, message)
        self.retry_after = retry_after


def quota_error_message(error: QuotaExceeded) -> str:
    """The JSON text a refused WebSocket viewer receives before the socket closes."""
    return json.dumps(
        {"type": "error", "status": 429, "message": str(error), "retry_after": error.retry_after},
        ensure_ascii=False,
    )


class ViewerLease:
    """One counted viewer socket; `release` once it ends."""

    def __init__(self, quotas: VideoQuotas, user_id: int, kind: ViewerKind) -> None:
        self._quotas = quotas
        self._slot = (user_id, kind)
        self._held = True

    def release(self) -> None:
        """Give the slot back (idempotent)."""
        if self._held:
            self._held = False
            self._quotas.viewers[self._slot] -= 1


class VideoQuotas:
    """Counts in memory (event loop only) for viewers; the exports table for exports."""

    def __init__(self, config: VideoQuotaConfig, hub: VideoHub, database: CentralDatabase) -> None:
        self.config = config
        self.hub = hub
        self.database = database
        self.viewers: Counter[tuple[int, ViewerKind]] = Counter()
        self._export_lock = asyncio.Lock()

    @property
    def user_streams(self) -> int:
        """Upstreams of one site one user may start: their share, at least one."""
        cfg = self.config
        return max(1, math.floor(cfg.user_site_share * cfg.site_streams))

    async def viewer(
        self, user_id: int, kind: ViewerKind, key: StreamKey, *, uses_uplink: bool = True
    ) -> ViewerLease:
        """Count a viewer socket of `user_id`; QuotaExceeded if a limit is reached.

        Joining a live stream someone already watches costs the uplink nothing, nor does a
        replay from the city archive (`uses_uplink` False); a replay from the edge or a live
        stream not yet running starts a new upstream and is checked against the site.
        """
        limit = self.config.replays_per_user if kind == "replay" else self.config.live_per_user
        used = self.viewers[(user_id, kind)]
        if used >= limit:
            what = "replays" if kind == "replay" else "live streams"
            raise QuotaExceeded(
                f"视频配额 video quota: you already have {used} {what} open "
                f"(at most {limit} at once); close one and try again"
            )
        running = self.hub.find(key)
        new_upstream = kind == "replay" or running is None or running.state == "ended"
        if uses_uplink and new_upstream:
            await self.check_site(user_id, key.site)
        self.viewers[(user_id, kind)] += 1
        return ViewerLease(self, user_id, kind)

    async def check_site(self, user_id: int | None, site: str) -> None:
        """QuotaExceeded if a new upstream of `site` for `user_id` would exceed the uplink.

        A public viewer (`user_id` None) has no share of its own: only the site's limit counts.
        """
        cfg = self.config
        streams = [u for u in self.hub.upstreams() if u.key.site == site and u.state != "ended"]
        exports = await asyncio.to_thread(self._running_exports, site)
        busy = len(streams) + len(exports)
        if busy >= cfg.site_streams:
            raise QuotaExceeded(
                f"视频配额 video quota: site {site}'s uplink already carries {busy} streams and "
                f"exports (at most {cfg.site_streams}); try again when one ends"
            )
        if user_id is None:
            return
        mine = sum(1 for u in streams if u.opened_by == user_id)
        mine += sum(1 for uid in exports if uid == user_id)
        if mine >= self.user_streams:
            raise QuotaExceeded(
                f"视频配额 video quota: you started {mine} of site {site}'s {cfg.site_streams} "
                f"uplink streams (your share is {self.user_streams}); close one and try again"
            )

    async def check_export(self, user_id: int, site: str) -> asyncio.Lock:
        """Checks for a new export; returns the (held) lock to release once it is recorded.

        Holding the lock from the check to the job's row makes concurrent requests of one
        process count each other.
        """
        await self._export_lock.acquire()
        try:
            cfg = self.config
            since = time.time() - 3600
            by_user, by_site = await asyncio.to_thread(self._exports_since, user_id, site, since)
            if by_user >= cfg.exports_per_hour_per_user:
                raise QuotaExceeded(
                    f"视频配额 video quota: you asked for {by_user} exports in the last hour "
                    f"(at most {cfg.exports_per_hour_per_user}); try again later",
                    retry_after=600,
                )
            if by_site >= cfg.exports_per_hour_per_site:
                raise QuotaExceeded(
                    f"视频配额 video quota: site {site} had {by_site} exports in the last hour "
                    f"(at most {cfg.exports_per_hour_per_site}); try again later",
                    retry_after=600,
                )
            await self.check_site(user_id, site)
        except BaseException:
            self._export_lock.release()
            raise
        return self._export_lock

    def _running_exports(self, site: str) -> list[int | None]:
        """The users of `site`'s exports the edge is still sending (recent ones only)."""
        placeholders = ",".join("?" for _ in _RUNNING)
        with self.database.lock:
            rows = self.database.db.query(
                f"select user_id from video_exports where site_id = ? "
                f"and status in ({placeholders}) and created_at > ?",
                [site, *_RUNNING, time.time() - 3600],
            )
            return [r["user_id"] for r in rows]

    def _exports_since(self, user_id: int, site: str, since: float) -> tuple[int, int]:
        with self.database.lock:
            db = self.database.db
            by_user = db.execute(
                "select count(*) from video_exports where user_id = ? and created_at > ?",
                [user_id, since],
            ).fetchone()[0]
            by_site = db.execute(
                "select count(*) from video_exports where site_id = ? and created_at > ?",
                [site, since],
            ).fetchone()[0]
        return int(by_user), int(by_site)
