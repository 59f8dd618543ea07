"""Push jobs: one `deliveries` row per alert and receiver, pending until settled.

Jobs are created in the alert's own transaction, so an alert never exists without its
pushes (nor the reverse). The dispatcher takes due jobs, live alerts' first, makes one
attempt each and writes the outcome: delivered, failed for good, or due again after a
back-off; a job still pending when it expires is settled as expired. A crash between an
attempt and its outcome only means the attempt is made again (at-least-once).
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from central.alerts.push import Target, targets_in
from central.db import live_reads
from central.schema import LockedDb
from fsv_contract import live


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

    def __init__(self, ldb: LockedDb, expire_s: float = 86400.0) -> None:
        self._ldb = ldb
        self.expire_s = expire_s

    def create(self, db: Any, alert: dict[str, Any], now: float) -> int:
        """Insert the jobs of a new alert on `db`, inside the caller's transaction."""
        # A live alert's pushes go before those of a backlog flushed after an outage.
        urgent = int(float(alert["start"]) >= live.live_since(now))
        rows = [
            {
                "alert_id": alert["id"],
                "target": t.kind,
                "target_id": t.target_id,
                "status": "pending",
                "attempts": 0,
                "last_error": "",
                "created_at": now,
                "updated_at": now,
                "next_at": now,
                "expires_at": now + self.expire_s,
                "urgent": urgent,
            }
            for t in targets_in(db, alert, now)
        ]
        if rows:
            db.table("deliveries").insert_all(rows)
        return len(rows)

    def due(self, now: float, limit: int, exclude: Collection[int] = ()) -> list[Job]:
        """Up to `limit` jobs due now (live alerts first), not among `exclude`.

        Read on the reader kept for live alerts: the pool's may be busy with page reads.
        """
        with live_reads(), self._ldb.read() as db:
            rows = [
                dict(r)
                for r in db.query(
                    "select * from deliveries where status = 'pending' and next_at <= ? "
                    "order by urgent desc, next_at, id limit ?",
                    [now, limit + len(exclude)],
                )
            ]
            return [self._job(db, r) for r in rows if r["id"] not in exclude][:limit]

    def next_due(self) -> float | None:
        """When the next pending job falls due (None: none pending; read as `due`)."""
        with live_reads(), self._ldb.read() as db:
            row = db.execute(
                "select min(next_at) from deliveries where status = 'pending'"
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
                "updated_at = ?, next_at = null where id = ?",
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
                "update deliveries set attempts = ?, last_error = ?, updated_at = ?, next_at = ? "
                "where id = ?",
                [attempts, error[:500], time.time(), at, job.id],
            )
