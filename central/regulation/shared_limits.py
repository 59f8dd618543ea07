"""Rate limits kept in the database (`shared_limits`), so they hold across several nodes.

Behind a load balancer a client's requests land on every node: a limit counted in one
node's memory would let it through N times. With several nodes the public view's limit per
address, the webhook test limit per admin and the hourly audit of an API token's use are
kept here instead; one row per key (`name` + key), whose `hits` are the times of the hits
still inside the window (JSON) and `expires_at` when the row stops mattering. The clock is
the wall clock, which the nodes share (NTP). The calls write, so run them off the event loop
(the `*_now` methods do).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from central.regulation.public import RateLimiter
from central.regulation.sessions import TOKEN_AUDIT_S, TokenUses

SEP = "\x1f"  # between the limit's name and the key (never in an address or an id)
PURGE_EVERY = 256  # calls between deletions of expired rows

# Take the row's lock first (an update of nothing), so that on PostgreSQL two nodes counting
# the same key at once count one after the other; SQLite has one writer anyway.
TOUCH_SQL = (
    "insert into shared_limits (key, hits, expires_at) values (?, '[]', 0) "
    "on conflict (key) do update set expires_at = shared_limits.expires_at"
)

# An audit is due when the key has no row or its row expired; the row then holds the next
# hour. One statement: of two nodes seeing one token at once, one changes the row.
DUE_SQL = (
    "insert into shared_limits (key, hits, expires_at) values (?, '[]', ?) "
    "on conflict (key) do update set expires_at = excluded.expires_at "
    "where shared_limits.expires_at <= ?"
)


class _Purge:
    """Deletes the expired rows on every PURGE_EVERY-th call."""

    def __init__(self) -> None:
        self._calls = 0

    def maybe(self, db: Any, now: float) -> None:
        self._calls += 1
        if self._calls % PURGE_EVERY == 0:
            db.execute("delete from shared_limits where expires_at < ?", [now])


class SharedRateLimiter(RateLimiter):
    """RateLimiter's sliding window with the hits in the database (`name` keeps limits apart)."""

    def __init__(self, ldb: Any, name: str, limit: int, window_s: float) -> None:
        super().__init__(limit, window_s)
        self._ldb = ldb
        self.name = name
        self._purge = _Purge()

    def now(self) -> float:
        """Wall-clock time: comparable between nodes."""
        return time.time()

    def allow(self, key: str, now: float) -> bool:
        """Count a hit for `key` and say whether it is within the limit (blocking)."""
        row_key = SEP.join((self.name, key))
        with self._ldb.transaction() as db:
            db.execute(TOUCH_SQL, [row_key])
            row = db.execute("select hits from shared_limits where key = ?", [row_key]).fetchone()
            hits = [t for t in json.loads(str(row[0])) if t > now - self.window_s]
            allowed = len(hits) < self.limit
            if allowed:
                hits.append(now)
            db.execute(
                "update shared_limits set hits = ?, expires_at = ? where key = ?",
                [json.dumps(hits), max(hits, default=now) + self.window_s, row_key],
            )
            self._purge.maybe(db, now)
        return allowed

    async def allow_now(self, key: str) -> bool:
        """`allow` at this moment, off the event loop."""
        return await asyncio.to_thread(self.allow, key, self.now())


class SharedTokenUses(TokenUses):
    """TokenUses with the last audited use of each token in the database."""

    def __init__(self, ldb: Any, every_s: float = TOKEN_AUDIT_S) -> None:
        super().__init__(every_s)
        self._ldb = ldb
        self._purge = _Purge()

    def now(self) -> float:
        """Wall-clock time: comparable between nodes."""
        return time.time()

    def due(self, token_id: str, now: float) -> bool:
        """True (and remembered) when `token_id`'s use at `now` should be audited."""
        row_key = SEP.join(("token-audit", token_id))
        with self._ldb.transaction() as db:
            cur = db.execute(DUE_SQL, [row_key, now + self.every_s, now])
            self._purge.maybe(db, now)
            return bool(cur.rowcount == 1)

    async def due_now(self, token_id: str) -> bool:
        """`due` at this moment, off the event loop."""
        return await asyncio.to_thread(self.due, token_id, self.now())
