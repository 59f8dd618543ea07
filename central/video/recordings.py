"""Recorded ranges and gaps of a camera, asked of its edge (`recordings`) and cached here.

The edge's index is the truth; central asks it once per question and keeps the answer a
while: long for the past (it only changes when retention deletes), briefly for today.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from central.errors import CentralError
from central.video.hub import ReplyReader, Sender
from central.video.single_flight import SingleFlight
from fsv_contract.video import VERB_RECORDINGS, RecordingsArgs

TTL_PAST_S = 600.0
TTL_RECENT_S = 15.0
RECENT_S = 300.0  # a question reaching this close to now is about a timeline still growing
ANSWER_TIMEOUT_S = 10.0
POLL_S = 0.05
MAX_CACHED = 2000


class EdgeUnavailable(CentralError):
    """The edge did not answer in time (offline, or its link is slow)."""


class EdgeRefused(CentralError):
    """The edge answered with an error."""


class RecordingsCache:
    """Answers of `recordings` by (site, camera, start, end); one question in flight per key."""

    def __init__(
        self, send: Sender, reply: ReplyReader, timeout_s: float = ANSWER_TIMEOUT_S
    ) -> None:
        self._send = send
        self._reply = reply
        self.timeout_s = timeout_s
        self._cache: dict[tuple[str, str, float, float], tuple[float, dict[str, Any]]] = {}
        self._inflight: SingleFlight[tuple[str, str, float, float], dict[str, Any]] = SingleFlight()
        self.asked = 0

    async def get(self, site: str, camera: str, start: float, end: float) -> dict[str, Any]:
        """Ranges and gaps in [start, end); EdgeUnavailable / EdgeRefused if no good answer."""
        key = (site, camera, start, end)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]

        async def ask_and_keep() -> dict[str, Any]:
            answer = await self._ask(site, camera, start, end)
            ttl = TTL_RECENT_S if end > time.time() - RECENT_S else TTL_PAST_S
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[key] = (time.monotonic() + ttl, answer)
            return answer

        return await self._inflight.run(key, ask_and_keep)

    async def _ask(self, site: str, camera: str, start: float, end: float) -> dict[str, Any]:
        args = RecordingsArgs(
            camera=camera,
            start=datetime.fromtimestamp(start, UTC),
            end=datetime.fromtimestamp(end, UTC),
        ).model_dump(mode="json")
        request_id = await asyncio.to_thread(self._send, site, VERB_RECORDINGS, args)
        self.asked += 1
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            row = await asyncio.to_thread(self._reply, request_id)
            if row is not None and row.get("replied_at") is not None:
                if not row.get("ok"):
                    raise EdgeRefused(str(row.get("error") or "the edge refused"))
                result: dict[str, Any] = row.get("result") or {}
                return result
            await asyncio.sleep(POLL_S)
        raise EdgeUnavailable(f"site {site!r} did not answer in {self.timeout_s:.0f} s")
