"""Several central nodes on one database: who this node is, and work that runs once.

Two or more `central-server` processes may share one database (behind a load balancer).
Most background work is safe on every node: ingest writes what its own broker connection
delivers (duplicates refused by event id), push jobs are claimed one by one in the database
(central.alerts.push_jobs), and each node looks after its own sockets and video upstreams.
Work that must run once per deployment runs under a lease: a `node_leases` row naming the
holder and when its hold ends. The holder renews it every `renew_s`; when a node stops
renewing (killed, cut off from the database), another takes the lease over once it expired,
within `lease_s` + `renew_s`. Leases compare wall clocks of the nodes: keep them in sync (NTP).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from central.config import CentralConfig
from central.schema import LockedDb

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Work = Callable[[], Coroutine[Any, Any, None]]

# Take the lease when it is free, expired or already ours; a row that changed means we hold it.
HOLD_SQL = (
    "insert into node_leases (name, holder, expires_at) values (?, ?, ?) "
    "on conflict (name) do update set holder = excluded.holder, "
    "expires_at = excluded.expires_at "
    "where node_leases.holder = excluded.holder or node_leases.expires_at < ?"
)

# The singleton work of central and the lease each one runs under.
ALERT_FEED = "alert-feed"
INTEGRITY_AUDITS = "integrity-audits"
EXPORT_EXPIRY = "video-export-expiry"
ARCHIVE_RETENTION = "archive-retention"


def default_node_id() -> str:
    """This process's name when none is configured: host name and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


def node_id(config: CentralConfig) -> str:
    """This node's configured name, or the default."""
    return config.cluster.node_id or default_node_id()


def leases_for(config: CentralConfig, ldb: LockedDb) -> Leases | None:
    """The leases of a deployment of several nodes; None for a single node (work just runs)."""
    if config.cluster.nodes < 2:
        return None
    return Leases(ldb, node_id(config), config.cluster.lease_s)


class Leases:
    """Named leases in `node_leases`, held by one node at a time."""

    def __init__(
        self, ldb: LockedDb, node_id: str, lease_s: float = 15.0, clock: Clock = time.time
    ) -> None:
        self.ldb = ldb
        self.node_id = node_id
        self.lease_s = lease_s
        self._clock = clock

    def hold(self, name: str) -> bool:
        """Take or renew the lease `name` for `lease_s` from now; True while it is ours."""
        with self.ldb.transaction() as db:
            now = self._clock()  # read once the write lock is ours: the hold starts now
            cur = db.execute(HOLD_SQL, [name, self.node_id, now + self.lease_s, now])
            return cur.rowcount == 1

    def release(self, name: str) -> None:
        """Give the lease up at once (an orderly stop: another node takes over next round)."""
        with self.ldb.transaction() as db:
            db.execute(
                "delete from node_leases where name = ? and holder = ?", [name, self.node_id]
            )

    def holder(self, name: str) -> str | None:
        """Who holds `name` now (None: nobody, or the hold expired)."""
        with self.ldb.read() as db:
            row = db.execute(
                "select holder from node_leases where name = ? and expires_at >= ?",
                [name, self._clock()],
            ).fetchone()
        return None if row is None else str(row[0])


async def lead(
    leases: Leases | None, name: str, work: Work, renew_s: float = 5.0, release: bool = True
) -> None:
    """Run `work()` while this node holds the lease `name`, until cancelled.

    Without leases (a single node) the work simply runs. The lease is renewed every
    `renew_s`; when it cannot be renewed (another node took it, or the database refused)
    the work is cancelled at once, so two nodes never run it together for longer than the
    renewal that failed. Work that ends by itself is started again on the next round.
    On cancellation the lease is released (unless `release` is False), so a node stopped in
    order hands over quickly.
    """
    if leases is None:
        await work()
        return
    task: asyncio.Task[None] | None = None
    try:
        while True:
            try:
                held = await asyncio.to_thread(leases.hold, name)
            except Exception:  # noqa: BLE001 - not renewed: behave as if it was lost
                log.exception("cannot renew the lease %s", name)
                held = False
            if held and (task is None or task.done()):
                if task is None:
                    log.info("node %s leads %s", leases.node_id, name)
                task = asyncio.create_task(work(), name=f"{name}@{leases.node_id}")
            elif not held and task is not None:
                log.info("node %s no longer leads %s", leases.node_id, name)
                await _stop(task)
                task = None
            await asyncio.sleep(renew_s)
    finally:
        if task is not None:
            await _stop(task)
        if task is not None and release:
            try:
                await asyncio.to_thread(leases.release, name)
            except Exception:  # noqa: BLE001 - it expires by itself
                log.exception("cannot release the lease %s", name)


HEALTH_TIMEOUT_S = 2.0
NODE_HEADER = "X-FSV-Node"


def add_health(app: web.Application) -> None:
    """`GET /healthz`: 200 and this node's id while it can read the database, else 503.

    For the load balancer's health checks (configs/haproxy.cfg); no login, nothing else told.
    """
    app.router.add_get("/healthz", healthz)
    app.on_response_prepare.append(_name_node)


async def _name_node(request: web.Request, response: web.StreamResponse) -> None:
    """With several nodes every response names the node that made it (`X-FSV-Node`)."""
    from central.keys import CONFIG

    cluster = request.app[CONFIG].cluster
    if cluster.nodes > 1 and cluster.node_id is not None:
        response.headers[NODE_HEADER] = cluster.node_id


async def healthz(request: web.Request) -> web.Response:
    """Whether this node answers and reads its database within HEALTH_TIMEOUT_S."""
    from central.keys import CONFIG, DATABASE

    database = request.app.get(DATABASE)
    node = node_id(request.app[CONFIG])
    if database is None:
        return web.Response(status=503, text=f"starting {node}\n")
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            await asyncio.to_thread(_read_one, database)
    except Exception:  # noqa: BLE001 - any failure takes the node out of rotation
        log.exception("health check: the database does not answer")
        return web.Response(status=503, text=f"database unavailable on {node}\n")
    return web.Response(text=f"ok {node}\n")


def _read_one(database: LockedDb) -> None:
    with database.read() as db:
        db.execute("select 1").fetchone()


async def run_forever() -> None:
    """Work that is only the holding of its lease (a node's `node:` lease)."""
    await asyncio.Event().wait()


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
