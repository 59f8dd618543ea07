"""Push jobs: one `deliveries` row per alert and receiver, pending until settled.

Jobs are created in the alert's own transaction, so an alert never exists without its
pushes (nor the reverse). The dispatcher takes due jobs, live alerts' first, makes one
attempt each and writes the outcome: delivered, failed for good, or due again after a
back-off; a job still pending when it expires is settled as expired. A crash between an
attempt and its outcome only means the attempt is made again (at-least-once).

Several central nodes share the queue: a node claims the jobs it takes (`claimed_by`,
`claimed_until`) with one conditional update each, so a job is attempted by one node at a
time; a claim left by a node that died lapses after `claim_s` and the job is taken again
(at once by the same node restarted under its `node_id`). A single node claims nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from central.alerts.push import Target, receivers_in
from central.schema import LockedDb
from central.storage.db import live_reads
from fsv_contract import live

# How long a node's claim on a job lasts by default: past one attempt (push.timeout_s).
CLAIM_S = 30.0
_INSERT_JOB = (
    "insert into deliveries (alert_id, target, target_id, status, attempts, last_error, "
    "created_at, updated_at, next_at, expires_at, urgent) "
    "values (?, ?, ?, 'pending', 0, '', ?, ?, ?, ?, ?)"
)
CLAIM_SQL = (
    "update deliveries set claimed_by = ?, claimed_until = ? where id = ? "
    "and status = 'pending' and (claimed_until is null or claimed_until < ? or claimed_by = ?)"
)


@dataclass(frozen=True)
class Job:
    """One pending delivery with what it needs to be sent."""

    id: int
    attempts: int
    expires_at: float
    alert: dict[str, Any]
    target: Target | None  # None: the receiver was removed since the job was created


class PushJobs:
    """The durable delivery queue in `deliveries`."""

    def __init__(
        self,
        ldb: LockedDb,
        expire_s: float = 86400.0,
        node_id: str | None = None,
        claim_s: float = CLAIM_S,
    ) -> None:
        self._ldb = ldb
        self.expire_s = expire_s
        self.node_id = node_id
        self.claim_s = claim_s

    def create(self, db: Any, alert: dict[str, Any], now: float) -> int:
        """Insert the jobs of a new alert on `db`, inside the caller's transaction."""
        return self.create_many(db, [alert], now)

    def create_many(self, db: Any, alerts: Sequence[dict[str, Any]], now: float) -> int:
        """Insert the jobs of new alerts on `db`, inside the caller's transaction: the
        receivers are read once, the jobs written in one statement (run for each row)."""
        if not alerts:
            return 0
        receivers = receivers_in(db)
        live_since = live.live_since(now)
        rows = []
        for alert in alerts:
            # A live alert's pushes go before those of a backlog flushed after an outage.
            urgent = int(float(alert["start"]) >= live_since)
            rows += [
                (alert["id"], t.kind, t.target_id, now, now, now, now + self.expire_s, urgent)
                for t in receivers.targets(alert, now)
            ]
        if rows:
            db.conn.executemany(_INSERT_JOB, rows)
        return len(rows)

    def due(self, now: float, limit: int, exclude: Collection[int] = ()) -> list[Job]:
        """Up to `limit` jobs due now (live alerts first), not among `exclude`.

        With a `node_id` (several nodes) the jobs are claimed, and only those this node's
        claim took are returned: another node may claim the same candidates meanwhile.
        Read on the reader kept for live alerts: the pool's may be busy with page reads.
        """
        with live_reads(), self._ldb.read() as db:
            rows = [
                dict(r)
                for r in db.query(
                    "select * from deliveries where status = 'pending' and next_at <= ? "
                    "and (claimed_until is null or claimed_until < ? or claimed_by = ?) "
                    "order by urgent desc, next_at, id limit ?",
                    [now, now, self.node_id, limit + len(exclude)],
                )
            ]
        rows = [r for r in rows if r["id"] not in exclude][:limit]
        if self.node_id is None:
            claimed = {int(r["id"]) for r in rows}
        else:
            claimed = self._claim([int(r["id"]) for r in rows], now)
        if not claimed:
            return []
        with live_reads(), self._ldb.read() as db:
            return [self._job(db, r) for r in rows if r["id"] in claimed]

    def _claim(self, ids: list[int], now: float) -> set[int]:
        """The jobs among `ids` this node now holds a claim on (one conditional update each)."""
        if not ids:
            return set()
        claimed = set()
        with self._ldb.transaction() as db:
            for job_id in ids:
                cur = db.execute(
                    CLAIM_SQL, [self.node_id, now + self.claim_s, job_id, now, self.node_id]
                )
                if cur.rowcount == 1:
                    claimed.add(job_id)
        return claimed

    def next_due(self) -> float | None:
        """When the next pending job falls due or its claim lapses (None: none pending)."""
        with live_reads(), self._ldb.read() as db:
            row = db.execute(
                "select min(case when claimed_until > next_at then claimed_until "
                "else next_at end) from deliveries where status = 'pending'"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def pending(self) -> int:
        """How many jobs are pending."""
        with self._ldb.read() as db:
            row = db.execute("select count(*) from deliveries where status = 'pending'").fetchone()
        return int(row[0])

    @staticmethod
    def _job(db: Any, row: dict[str, Any]) -> Job:
        alerts = list(db.query("select * from alerts where id = ?", [row["alert_id"]]))
        alert = dict(alerts[0]) if alerts else {"id": row["alert_id"]}
        orgs = list(db.query("select name from orgs where org_path = ?", [alert.get("org_path")]))
        alert["enterprise_name"] = str(orgs[0]["name"]) if orgs else ""
        for key in ("snapshot", "clip", "first_clip"):
            if isinstance(alert.get(key), str):
                alert[key] = json.loads(alert[key])
        target: Target | None = None
        if row["target"] == "webpush":
            subs = list(
                db.query(
                    "select s.id as sub_id, s.endpoint, s.p256dh, s.auth, u.* "
                    "from push_subscriptions s join users u on u.id = s.user_id "
                    "where s.id = ?",
                    [row["target_id"]],
                )
            )
            target = Target("webpush", row["target_id"], dict(subs[0])) if subs else None
        else:
            hooks = list(db.query("select * from webhooks where id = ?", [row["target_id"]]))
            target = Target("webhook", row["target_id"], dict(hooks[0])) if hooks else None
        return Job(int(row["id"]), int(row["attempts"]), float(row["expires_at"]), alert, target)

    def settle(self, job: Job, status: str, attempts: int, error: str) -> None:
        """Write a final outcome; a gone subscription is removed, failures are counted."""
        now = time.time()
        with self._ldb.transaction() as db:
            db.execute(
                "update deliveries set status = ?, attempts = ?, last_error = ?, "
                "updated_at = ?, next_at = null, claimed_by = null, claimed_until = null "
                "where id = ?",
                [status, attempts, error[:500], now, job.id],
            )
            if job.target is None or job.target.kind != "webpush":
                return
            if status == "gone":
                db.execute("delete from push_subscriptions where id = ?", [job.target.target_id])
            else:
                db.execute(
                    "update push_subscriptions set failures = "
                    "case when ? = 'ok' then 0 else failures + 1 end where id = ?",
                    [status, job.target.target_id],
                )

    def retry_later(self, job: Job, attempts: int, error: str, at: float) -> None:
        """Keep the job pending, due again at `at`."""
        with self._ldb.transaction() as db:
            db.execute(
                "update deliveries set attempts = ?, last_error = ?, updated_at = ?, next_at = ?, "
                "claimed_by = null, claimed_until = null where id = ?",
                [attempts, error[:500], time.time(), at, job.id],
            )
