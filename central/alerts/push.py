"""Push delivery: Web Push to subscribed phones and webhooks per organisation.

Each new alert's receivers (scope and filters applied) become durable jobs in `deliveries`,
written in the same transaction as the alert (central.alerts.push_jobs); the dispatcher
delivers them with retries and back-off, so a slow or dead receiver never holds up ingest
and no crash or lock loses a push.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from py_vapid import Vapid
from pywebpush import WebPusher

from central.alerts.push_rules import (
    WEBHOOK_FORMATS,
    OutgoingRequest,
    PushFilters,
    wants,
)
from central.errors import ConfigError, InvalidInputError, NotFoundError
from central.regulation.scope import Scope, in_scope, scope_filter
from central.regulation.users import User, user_from_row
from central.schema import LockedDb
from central.settings import PushConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One receiver of one alert."""

    kind: str  # "webpush" or "webhook"
    target_id: int
    row: dict[str, Any]


class PushStore:
    """Subscriptions, webhooks and delivery records."""

    def __init__(self, ldb: LockedDb) -> None:
        self._ldb = ldb

    def subscribe(self, user: User, endpoint: str, p256dh: str, auth: str) -> int:
        """Register (or re-register) a browser push subscription of `user`."""
        parts = urlsplit(endpoint)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise InvalidInputError("endpoint must be an http(s) URL")
        row = {
            "user_id": user.id,
            "endpoint": endpoint,
            "p256dh": p256dh,
            "auth": auth,
            "created_at": time.time(),
            "failures": 0,
        }
        with self._ldb.transaction() as db:
            db.execute("delete from push_subscriptions where endpoint = ?", [endpoint])
            return int(str(db.table("push_subscriptions").insert(row).last_pk))

    def unsubscribe(self, user: User, subscription_id: int) -> None:
        """Remove one of `user`'s subscriptions."""
        with self._ldb.transaction() as db:
            cur = db.execute(
                "delete from push_subscriptions where id = ? and user_id = ?",
                [subscription_id, user.id],
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"subscription {subscription_id} not found")

    def subscriptions(self, user: User) -> list[dict[str, Any]]:
        """The subscriptions of `user` (keys left out)."""
        with self._ldb.lock:
            rows = self._ldb.db.query(
                "select id, endpoint, created_at, failures from push_subscriptions "
                "where user_id = ? order by id",
                [user.id],
            )
            return [dict(r) for r in rows]

    def add_webhook(
        self, scope: Scope, org_id: int, url: str, fmt: str, secret: str, filters: PushFilters
    ) -> dict[str, Any]:
        """Configure a webhook receiving the alerts of an organisation's subtree."""
        if fmt not in WEBHOOK_FORMATS:
            raise InvalidInputError(f"format must be one of {', '.join(WEBHOOK_FORMATS)}")
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise InvalidInputError("url must be an http(s) URL")
        with self._ldb.transaction() as db:
            org = list(db.query("select * from orgs where id = ?", [org_id]))
            if not org or not in_scope(scope, org[0]["org_path"]):
                raise NotFoundError(f"organisation {org_id} not found")
            pk = (
                db.table("webhooks")
                .insert(
                    {
                        "org_id": org_id,
                        "org_path": org[0]["org_path"],
                        "url": url,
                        "format": fmt,
                        "secret": secret,
                        "filters": filters.model_dump_json(),
                        "enabled": 1,
                        "created_at": time.time(),
                    }
                )
                .last_pk
            )
        return self.get_webhook(scope, int(str(pk)))

    def get_webhook(self, scope: Scope, webhook_id: int) -> dict[str, Any]:
        """One webhook (secret hidden); NotFoundError outside `scope`."""
        with self._ldb.lock:
            rows = list(self._ldb.db.query("select * from webhooks where id = ?", [webhook_id]))
        if not rows or not in_scope(scope, rows[0]["org_path"]):
            raise NotFoundError(f"webhook {webhook_id} not found")
        return _public_webhook(dict(rows[0]))

    def list_webhooks(self, scope: Scope) -> list[dict[str, Any]]:
        """Webhooks in scope (secrets hidden)."""
        where, args = scope_filter(scope)
        with self._ldb.lock:
            rows = self._ldb.db.query(f"select * from webhooks where {where} order by id", args)
            return [_public_webhook(dict(r)) for r in rows]

    def webhook_row(self, scope: Scope, webhook_id: int) -> dict[str, Any]:
        """One webhook with its secret (for a test send); NotFoundError outside `scope`."""
        self.get_webhook(scope, webhook_id)
        with self._ldb.lock:
            rows = self._ldb.db.query("select * from webhooks where id = ?", [webhook_id])
            return dict(next(iter(rows)))

    def set_webhook_enabled(self, scope: Scope, webhook_id: int, enabled: bool) -> dict[str, Any]:
        """Pause or resume a webhook in scope (a paused one gets no new deliveries)."""
        self.get_webhook(scope, webhook_id)
        with self._ldb.transaction() as db:
            db.execute("update webhooks set enabled = ? where id = ?", [int(enabled), webhook_id])
        return self.get_webhook(scope, webhook_id)

    def delivery_stats(self, webhook_id: int, since: float) -> dict[str, Any]:
        """A webhook's deliveries since `since`: counts by outcome, the last success and error.

        Each figure is one range of the (target, target_id, status, updated_at) index.
        """
        counts: dict[str, int] = {}
        last: dict[str, Any] = {"delivered_at": None, "error": "", "error_at": None}
        with self._ldb.read() as db:
            for status in ("ok", "pending", "failed", "expired", "gone"):
                row = db.execute(
                    "select count(*), max(updated_at) from deliveries "
                    "where target = 'webhook' and target_id = ? and status = ? "
                    "and updated_at >= ?",
                    [webhook_id, status, since],
                ).fetchone()
                counts[status] = int(row[0])
                if status == "ok":
                    last["delivered_at"] = row[1]
                    continue
                err = db.execute(
                    "select last_error, updated_at from deliveries "
                    "where target = 'webhook' and target_id = ? and status = ? "
                    "and updated_at >= ? order by updated_at desc limit 1",
                    [webhook_id, status, since],
                ).fetchone()
                if status != "pending" and err and (last["error_at"] or 0) < err[1]:
                    last["error"], last["error_at"] = err[0] or "", err[1]
        failed = counts["failed"] + counts["expired"] + counts["gone"]
        return {"delivered": counts["ok"], "failed": failed, "pending": counts["pending"], **last}

    def delete_webhook(self, scope: Scope, webhook_id: int) -> None:
        """Remove a webhook in scope."""
        self.get_webhook(scope, webhook_id)
        with self._ldb.transaction() as db:
            db.execute("delete from webhooks where id = ?", [webhook_id])

    def targets(self, alert: dict[str, Any], now: float) -> list[Target]:
        """Every receiver whose scope holds the alert and whose filters want it."""
        with self._ldb.read() as db:
            return targets_in(db, alert, now)

    def deliveries(self, alert_id: str) -> list[dict[str, Any]]:
        """Delivery outcomes of one alert (the caller checked the alert's scope)."""
        with self._ldb.lock:
            rows = self._ldb.db.query(
                "select * from deliveries where alert_id = ? order by id", [alert_id]
            )
            return [dict(r) for r in rows]


@dataclass(frozen=True)
class Receivers:
    """Every enabled receiver (subscriptions of enabled users, enabled webhooks), their
    filters parsed: read once, then matched against any number of alerts."""

    subs: list[tuple[dict[str, Any], Scope, PushFilters]]
    hooks: list[tuple[dict[str, Any], Scope, PushFilters]]

    def targets(self, alert: dict[str, Any], now: float) -> list[Target]:
        """The receivers of `alert` (scope and filters applied)."""
        out: list[Target] = []
        for row, scope, filters in self.subs:
            if in_scope(scope, alert["org_path"]) and wants(filters, alert, now):
                out.append(Target("webpush", row["sub_id"], row))
        for hook, scope, filters in self.hooks:
            if in_scope(scope, alert["org_path"]) and wants(filters, alert, now):
                out.append(Target("webhook", hook["id"], hook))
        return out


def receivers_in(db: Any) -> Receivers:
    """Every enabled receiver, read on connection `db` (two queries)."""
    subs = []
    for r in db.query(
        "select s.id as sub_id, s.endpoint, s.p256dh, s.auth, u.* "
        "from push_subscriptions s join users u on u.id = s.user_id "
        "where u.disabled = 0 order by s.id"
    ):
        row = dict(r)
        user = user_from_row(row)
        subs.append((row, user.scope, PushFilters.model_validate(user.push_filters)))
    hooks = []
    for r in db.query("select * from webhooks where enabled = 1 order by id"):
        hook = dict(r)
        filters = PushFilters.model_validate_json(hook["filters"] or "{}")
        hooks.append((hook, Scope(hook["org_path"]), filters))
    return Receivers(subs, hooks)


def targets_in(db: Any, alert: dict[str, Any], now: float) -> list[Target]:
    """The receivers of `alert` read on connection `db` (scope and filters applied)."""
    return receivers_in(db).targets(alert, now)


def _public_webhook(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "secret"}
    out["filters"] = json.loads(row["filters"] or "{}")
    out["signed"] = bool(row["secret"])
    return out


def load_vapid(config: PushConfig) -> Vapid | None:
    """The VAPID key pair of the config, None when Web Push is not configured."""
    path = config.vapid_private_key_file
    if path is None:
        return None
    try:
        return Vapid.from_pem(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"push.vapid_private_key_file {path}: cannot read a VAPID key ({e}); "
            "make one with `central-server vapid-keys --out FILE`"
        ) from e


def build_webpush(
    sub: dict[str, Any], data: bytes, vapid: Vapid, subject: str, ttl: int
) -> OutgoingRequest:
    """An RFC 8291 (aes128gcm) encrypted, RFC 8292 (VAPID) signed Web Push request."""
    pusher = WebPusher(
        {"endpoint": sub["endpoint"], "keys": {"p256dh": sub["p256dh"], "auth": sub["auth"]}}
    )
    body = pusher.encode(data, "aes128gcm")["body"]
    parts = urlsplit(sub["endpoint"])
    claims = {
        "sub": subject,
        "aud": f"{parts.scheme}://{parts.netloc}",
        "exp": int(time.time()) + 12 * 3600,
    }
    headers = dict(vapid.sign(claims))
    headers.update(
        {
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(ttl),
            "Urgency": "high",
        }
    )
    return OutgoingRequest(sub["endpoint"], bytes(body), headers)
