"""Browser and API sessions, and named, scoped, expiring API tokens.

A session (a browser cookie or a bearer from `POST /auth/login`) lasts `web.session_hours`
and ends earlier after `web.idle_minutes` without a request. An API token is made on
purpose, with a name, a scope (`read`: GET only; `full`) and an expiry of at most
`web.token_max_days`; its owner and admins list and revoke it. The database keeps only
SHA-256 digests of both; a token is shown once, when it is made.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from central.errors import AuthError, InvalidInputError, NotFoundError
from central.regulation.passwords import new_token, token_digest
from central.regulation.users import Session, User, user_from_row
from central.schema import LockedDb
from central.storage.db import BUSY_TIMEOUT_S

TokenScope = Literal["read", "full"]
TOUCH_S = 60.0  # last use is written at most once a minute per session
TOUCH_WAIT_S = 0.05  # how long a request may wait for the write lock to note it

log = logging.getLogger(__name__)
TOKEN_AUDIT_S = 3600.0  # a token's use is audited at most once an hour
_TOKEN_COLUMNS = "token_id, label, scope, created_at, expires_at, last_used_at"


@dataclass(frozen=True)
class SessionPolicy:
    """How long sessions and tokens live."""

    session_s: float
    idle_s: float
    token_max_days: int


class SessionStore:
    """Sessions and API tokens in `user_sessions`."""

    def __init__(
        self, ldb: LockedDb, policy: SessionPolicy, clock: Callable[[], float] = time.time
    ) -> None:
        self._ldb = ldb
        self.policy = policy
        self._clock = clock
        # Last-use writes go out on their own thread: a request never waits for the write
        # lock (another process may hold it) just to note that a session was used.
        self._toucher = ThreadPoolExecutor(1, thread_name_prefix="session-touch")

    def open_session(self, user: User, kind: str) -> tuple[str, str]:
        """A `cookie` or `bearer` session after a login; returns (token, csrf token)."""
        if kind not in ("cookie", "bearer"):
            raise InvalidInputError(f"unknown session kind {kind!r}")
        token, csrf = new_token(), new_token()
        self._insert(user, token, kind, "session", "login", "full", csrf, self.policy.session_s)
        return token, csrf

    def create_token(
        self, user: User, name: str, scope: TokenScope, days: int
    ) -> tuple[str, dict[str, Any]]:
        """A new API token of `user`; returns (token, its public description)."""
        if not 1 <= days <= self.policy.token_max_days:
            raise InvalidInputError(f"a token lasts 1 to {self.policy.token_max_days} days")
        if scope not in ("read", "full"):
            raise InvalidInputError("scope: read or full")
        token = new_token()
        token_id = self._insert(user, token, "bearer", "token", name, scope, "", days * 86400.0)
        return token, self.get_token(user.id, token_id)

    def _insert(
        self, user: User, token: str, kind: str, purpose: str, label: str, scope: str,
        csrf: str, ttl_s: float,
    ) -> str:  # fmt: skip
        now, token_id = self._clock(), secrets.token_hex(8)
        with self._ldb.transaction() as db:
            db.table("user_sessions").insert(
                {"token_hash": token_digest(token), "user_id": user.id, "kind": kind,
                 "label": label, "csrf": csrf or new_token(), "created_at": now,
                 "expires_at": now + ttl_s, "last_used_at": now, "purpose": purpose,
                 "scope": scope, "token_id": token_id}
            )  # fmt: skip
        return token_id

    def resolve(self, token: str, kind: str) -> Session:
        """The live session of `token`; AuthError if unknown, expired, idle or of another kind."""
        digest, now = token_digest(token), self._clock()
        with self._ldb.read() as db:
            rows = list(
                db.query(
                    "select s.kind as s_kind, s.csrf as s_csrf, s.expires_at as s_expires, "
                    "s.last_used_at as s_used, s.purpose as s_purpose, s.scope as s_scope, "
                    "s.token_id as s_id, s.label as s_label, u.* from user_sessions s "
                    "join users u on u.id = s.user_id where s.token_hash = ?",
                    [digest],
                )
            )
        if not rows or rows[0]["s_kind"] != kind or rows[0]["s_expires"] < now:
            raise AuthError("not signed in or session expired")
        row = dict(rows[0])
        used = row["s_used"] or 0.0
        if row["s_purpose"] == "session" and now - used > self.policy.idle_s:
            self.close_session(digest)
            raise AuthError("session ended after inactivity; sign in again")
        if row["disabled"]:
            raise AuthError("account disabled")
        if now - used > TOUCH_S and not self._touch_now(digest, now):
            self._toucher.submit(self._touch, digest, now)
        return Session(
            user_from_row(row), kind, row["s_csrf"], digest,
            scope=row["s_scope"], purpose=row["s_purpose"], token_id=row["s_id"] or "",
            label=row["s_label"] or "",
        )  # fmt: skip

    def _touch_now(self, digest: str, now: float) -> bool:
        """Note the use at once if the write lock is free within TOUCH_WAIT_S."""
        if not self._ldb.lock.acquire(timeout=TOUCH_WAIT_S):
            return False
        conn = self._ldb.db.conn
        try:
            conn.execute(f"pragma busy_timeout = {int(TOUCH_WAIT_S * 1000)}")
            self._touch(digest, now, quiet=True)
            return True
        except sqlite3.OperationalError:
            return False  # another process writes: noted later, on the toucher thread
        finally:
            conn.execute(f"pragma busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._ldb.lock.release()

    def _touch(self, digest: str, now: float, quiet: bool = False) -> None:
        try:
            with self._ldb.transaction() as db:
                db.execute(
                    "update user_sessions set last_used_at = ? where token_hash = ?", [now, digest]
                )
        except sqlite3.Error as e:  # the next use a minute later writes it again
            if quiet:
                raise
            log.warning("could not note the use of a session: %s", e)

    def close_session(self, token_hash: str) -> None:
        """End a session (logout)."""
        with self._ldb.transaction() as db:
            db.execute("delete from user_sessions where token_hash = ?", [token_hash])

    def list_tokens(self, user_id: int) -> list[dict[str, Any]]:
        """The live API tokens of a user (never the secrets), newest first."""
        with self._ldb.lock:
            rows = self._ldb.db.query(
                f"select {_TOKEN_COLUMNS} from user_sessions where user_id = ? and "
                "purpose = 'token' and expires_at >= ? order by created_at desc",
                [user_id, self._clock()],
            )
            return [_token_out(dict(r)) for r in rows]

    def get_token(self, user_id: int, token_id: str) -> dict[str, Any]:
        """One API token of a user; NotFoundError otherwise."""
        with self._ldb.lock:
            rows = list(
                self._ldb.db.query(
                    f"select {_TOKEN_COLUMNS} from user_sessions where user_id = ? and "
                    "purpose = 'token' and token_id = ?",
                    [user_id, token_id],
                )
            )
        if not rows:
            raise NotFoundError(f"token {token_id} not found")
        return _token_out(dict(rows[0]))

    def revoke_token(self, user_id: int, token_id: str) -> dict[str, Any]:
        """Delete an API token of a user at once; returns what it was."""
        token = self.get_token(user_id, token_id)
        with self._ldb.transaction() as db:
            db.execute(
                "delete from user_sessions where user_id = ? and purpose = 'token' and "
                "token_id = ?",
                [user_id, token_id],
            )
        return token

    def purge_expired(self) -> int:
        """Remove expired sessions and tokens, and idle sessions; returns how many."""
        now = self._clock()
        with self._ldb.transaction() as db:
            cur = db.execute(
                "delete from user_sessions where expires_at < ? or "
                "(purpose = 'session' and last_used_at < ?)",
                [now, now - self.policy.idle_s],
            )
            return int(cur.rowcount)


def _token_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["token_id"],
        "name": row["label"],
        "scope": row["scope"],
        "created_at": row["created_at"],
        "expires_at": row["expires_at"],
        "last_used_at": row["last_used_at"],
    }


@dataclass
class TokenUses:
    """Decides which token uses are audited: the first use of a token in each hour."""

    every_s: float = TOKEN_AUDIT_S
    _last: dict[str, float] = field(default_factory=dict)

    def due(self, token_id: str, now: float) -> bool:
        """True (and remembered) when `token_id`'s use at `now` should be audited."""
        last = self._last.get(token_id)
        if last is not None and now - last < self.every_s:
            return False
        self._last[token_id] = now
        if len(self._last) > 100_000:
            self._last = {k: v for k, v in self._last.items() if now - v < self.every_s}
        return True

    def now(self) -> float:
        """The clock `due` is given (monotonic: one process)."""
        return time.monotonic()

    async def due_now(self, token_id: str) -> bool:
        """`due` at this moment (in memory: at once, on the event loop)."""
        return self.due(token_id, self.now())
