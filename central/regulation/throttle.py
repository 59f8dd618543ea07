"""Login throttling that an attacker cannot turn against the account's owner.

Failures are counted per (account, client) and per client, never per account alone: a
correct password from a client that has not failed is never refused because somebody else
guessed at the same account. Past the free failures, each further failure doubles the wait
(exponential delay up to a cap); a quiet spell of `forget_s` after the wait forgets the key.
The client is the socket peer, or what a configured trusted proxy says it forwarded for;
an IPv6 client counts as its /64 network, which one subscriber holds whole.

An attempt counts as a failure from the moment it `begin`s (checked and counted in one
step), and a right password takes its count back (`succeeded`): guesses sent all at once
would otherwise all pass the check before the first of them had failed.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_KEYS = 100_000  # bound on remembered keys under a scan from many addresses
IPV6_CLIENT_PREFIX = 64  # one home or mobile subscriber's IPv6 network


@dataclass
class _Failures:
    count: int
    last: float


@dataclass
class LoginThrottle:
    """Exponential delay per (account, client) and per client; pure, the clock is passed in."""

    pair_free: int = 5
    client_free: int = 20
    first_delay_s: float = 2.0
    max_delay_s: float = 900.0
    forget_s: float = 300.0
    _keys: dict[tuple[str, str], _Failures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def begin(self, account: str, client: str, now: float) -> float:
        """Seconds before `account` may be tried from `client`; when 0, the attempt is
        counted as failed at once (in the same step) until `succeeded` takes it back."""
        with self._lock:
            wait = self.retry_after(account, client, now)
            if wait <= 0:
                self.failed(account, client, now)
            return wait

    def retry_after(self, account: str, client: str, now: float) -> float:
        """Seconds before `account` may be tried again from `client` (0: now)."""
        return max(
            self._wait(("pair", _pair(account, client)), self.pair_free, now),
            self._wait(("client", client_block(client)), self.client_free, now),
        )

    def failed(self, account: str, client: str, now: float) -> None:
        """Record a failed attempt of `account` from `client`."""
        for key in (("pair", _pair(account, client)), ("client", client_block(client))):
            entry = self._live(key, now)
            if entry is None:
                self._keys[key] = _Failures(1, now)
            else:
                entry.count += 1
                entry.last = now
        if len(self._keys) > MAX_KEYS:
            self._forget_idle(now)

    def succeeded(self, account: str, client: str) -> None:
        """The attempt `begin` counted was right: forget the failures of `account` from
        `client`, and take back the one attempt counted on the client (its other failures
        stay)."""
        with self._lock:
            self._keys.pop(("pair", _pair(account, client)), None)
            entry = self._keys.get(("client", client_block(client)))
            if entry is not None and entry.count > 0:
                entry.count -= 1

    def now(self) -> float:
        """The clock `retry_after` and `failed` are given (monotonic: one process)."""
        return time.monotonic()

    def delay(self, count: int, free: int) -> float:
        """The wait after `count` failures when `free` of them cost nothing."""
        if count < free:
            return 0.0
        return float(min(self.max_delay_s, self.first_delay_s * 2 ** min(count - free, 40)))

    def _wait(self, key: tuple[str, str], free: int, now: float) -> float:
        entry = self._live(key, now)
        if entry is None:
            return 0.0
        return max(0.0, entry.last + self.delay(entry.count, free) - now)

    def _live(self, key: tuple[str, str], now: float) -> _Failures | None:
        entry = self._keys.get(key)
        if entry is None:
            return None
        free = self.pair_free if key[0] == "pair" else self.client_free
        if now - entry.last > self.delay(entry.count, free) + self.forget_s:
            del self._keys[key]
            return None
        return entry

    def _forget_idle(self, now: float) -> None:
        for key in list(self._keys):
            self._live(key, now)
        while len(self._keys) > MAX_KEYS:  # still too many: drop the oldest
            oldest = min(self._keys, key=lambda k: self._keys[k].last)
            del self._keys[oldest]


SEP = "\x1f"  # between the parts of a stored key (never in a name or an address)
PURGE_EVERY = 256  # failures between deletions of forgotten keys
# A row for the key, if none, without changing one that exists: `begin` takes the rows' locks
# with it before reading, so on PostgreSQL two nodes beginning at once count one after the
# other. A new row (count 0, last 0) makes no wait and is forgotten like any other.
TOUCH_SQL = (
    "insert into login_failures (key, count, last) values (?, 0, 0) "
    "on conflict (key) do update set last = login_failures.last"
)


class SharedLoginThrottle(LoginThrottle):
    """The same rules with the failures in the database (`login_failures`): several nodes.

    Behind a load balancer a guesser's attempts land on every node; counted in one place
    they meet one throttle. Keys are kept per `name` (user logins, site logins apart); the
    clock is the wall clock, which the nodes share (NTP). Call it off the event loop.
    """

    def __init__(self, ldb: Any, name: str, **limits: Any) -> None:
        super().__init__(**limits)
        self._ldb = ldb
        self.name = name
        self._failures = 0

    def now(self) -> float:
        """Wall-clock time: comparable between nodes."""
        return time.time()

    def retry_after(self, account: str, client: str, now: float) -> float:
        """Seconds before `account` may be tried again from `client` (0: now)."""
        keys = self._keys_of(account, client)
        with self._ldb.read() as db:
            marks = ", ".join("?" * len(keys))
            rows = db.execute(
                f"select key, count, last from login_failures where key in ({marks})",
                [k for k, _ in keys],
            ).fetchall()
        found = {str(r[0]): (int(r[1]), float(r[2])) for r in rows}
        wait = 0.0
        for key, free in keys:
            if key in found:
                count, last = found[key]
                wait = max(wait, last + self.delay(count, free) - now)
        return wait

    def begin(self, account: str, client: str, now: float) -> float:
        """Seconds before `account` may be tried from `client`; when 0, the attempt is
        counted as failed in the same transaction, whichever node another attempt meets."""
        keys = self._keys_of(account, client)
        with self._ldb.transaction() as db:
            for key, _free in keys:  # take the rows' locks first (PostgreSQL; SQLite: one writer)
                db.execute(TOUCH_SQL, [key])
            wait = 0.0
            for key, free in keys:
                count, last = db.execute(
                    "select count, last from login_failures where key = ?", [key]
                ).fetchone()
                wait = max(wait, float(last) + self.delay(int(count), free) - now)
            if wait <= 0:
                self._count(db, keys, now)
        return wait

    def failed(self, account: str, client: str, now: float) -> None:
        """Record a failed attempt of `account` from `client`."""
        with self._ldb.transaction() as db:
            self._count(db, self._keys_of(account, client), now)

    def _count(self, db: Any, keys: list[tuple[str, int]], now: float) -> None:
        for key, free in keys:
            row = db.execute(
                "select count, last from login_failures where key = ?", [key]
            ).fetchone()
            count = 1
            if row is not None and now - float(row[1]) <= (
                self.delay(int(row[0]), free) + self.forget_s
            ):
                count = int(row[0]) + 1
            db.execute(
                "insert into login_failures (key, count, last) values (?, ?, ?) "
                "on conflict (key) do update set count = excluded.count, last = excluded.last",
                [key, count, now],
            )
        self._failures += 1
        if self._failures % PURGE_EVERY == 0:
            db.execute(
                "delete from login_failures where last < ?",
                [now - self.max_delay_s - self.forget_s],
            )

    def succeeded(self, account: str, client: str) -> None:
        """The attempt `begin` counted was right: forget the failures of `account` from
        `client`, and take back the one attempt counted on the client."""
        (pair, _), (per_client, _) = self._keys_of(account, client)
        with self._ldb.transaction() as db:
            db.execute("delete from login_failures where key = ?", [pair])
            db.execute(
                "update login_failures set count = count - 1 where key = ? and count > 0",
                [per_client],
            )

    def _keys_of(self, account: str, client: str) -> list[tuple[str, int]]:
        block = client_block(client)
        pair = SEP.join((self.name, "pair", account.lower(), block))
        return [(pair, self.pair_free), (SEP.join((self.name, "client", block)), self.client_free)]


def _pair(account: str, client: str) -> str:
    return f"{account.lower()}\x00{client_block(client)}"


def client_block(client: str) -> str:
    """What the throttle counts a client as: an IPv4 address itself (also written as an
    IPv4-mapped IPv6 address), an IPv6 address its /64 network. Each guess from another
    address of one subscriber's /64 would otherwise start a fresh count."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(address)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: the socket peer, unless the peer is a trusted proxy.

    Behind a trusted proxy, the right-most X-Forwarded-For entry that is not itself a
    trusted proxy is the client (entries further left are whatever the client sent).
    A header from any other peer is ignored.
    """
    peer = peer or ""
    if not trusted or not _is_trusted(peer, trusted) or not forwarded_for:
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed hop: do not guess, blame the proxy's own address
        if not any(address in net for net in trusted):
            return str(address)
    return peer


def _is_trusted(peer: str, trusted: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in net for net in trusted)
