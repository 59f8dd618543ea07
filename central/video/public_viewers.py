"""Viewers of public kitchen links: a cap per link, and an end as soon as a link dies.

Each public link carries at most its `max_viewers` video connections at once (a parent's
phone is one); one more is refused with a message the page shows. A link revoked here ends
its viewers at once; a link revoked elsewhere (another process, the CLI) or past its expiry
ends them at the next check, a few seconds later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from central.video.quotas import QuotaExceeded
from central.video.viewers import SocketViewer
from fsv_contract.video import End

log = logging.getLogger(__name__)

CHECK_EVERY_S = 2.0
ENDED_REASON = "public_link_ended"  # the page shows it in words (public.ended)

LiveIds = Callable[[list[int]], set[int]]  # link ids -> those still live (a database read)


class PublicViewers:
    """The video connections of each public link (event loop only)."""

    def __init__(self, live_ids: LiveIds, check_every_s: float = CHECK_EVERY_S) -> None:
        self._live_ids = live_ids
        self.check_every_s = check_every_s
        self._viewers: dict[int, set[SocketViewer]] = {}

    def count(self, link_id: int) -> int:
        """Video connections of the link now."""
        return len(self._viewers.get(link_id, ()))

    def join(self, link_id: int, cap: int, viewer: SocketViewer) -> None:
        """Count `viewer` on the link; QuotaExceeded (in Chinese first) if the link is full."""
        viewers = self._viewers.setdefault(link_id, set())
        if len(viewers) >= cap:
            raise QuotaExceeded(
                f"观看人数已满 viewers full: this public link shows its video to at most {cap} "
                "viewers at once; try again in a few minutes",
                retry_after=60,
            )
        viewers.add(viewer)

    def leave(self, link_id: int, viewer: SocketViewer) -> None:
        """Forget `viewer` (idempotent)."""
        viewers = self._viewers.get(link_id)
        if viewers is None:
            return
        viewers.discard(viewer)
        if not viewers:
            del self._viewers[link_id]

    def end(self, link_id: int) -> int:
        """End every viewer of the link (revoked or expired); how many there were."""
        viewers = self._viewers.pop(link_id, set())
        text = End(reason=ENDED_REASON).model_dump_json()
        for viewer in viewers:
            viewer.finish(text)  # the end message goes out, then the socket closes
        return len(viewers)

    async def check(self) -> list[int]:
        """End the viewers of links that are no longer live; their ids."""
        ids = sorted(self._viewers)
        if not ids:
            return []
        live = await asyncio.to_thread(self._live_ids, ids)
        dead = [i for i in ids if i not in live]
        for link_id in dead:
            log.info("public link %s ended: closing %s viewers", link_id, self.end(link_id))
        return dead

    async def run(self) -> None:
        """Check the watched links every few seconds until cancelled."""
        while True:
            await asyncio.sleep(self.check_every_s)
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - a locked database now is retried next round
                log.exception("public link check failed")
