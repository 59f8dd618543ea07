"""Alerts: one per edge event, moved through the rectification workflow, with evidence holds.

While an alert is open the edge is asked (MQTT command `hold`) to keep the clip's time range
as evidence, whatever its retention cleaner would otherwise delete; closing the alert sends
`release`, reopening it sends `hold` again. The command goes out after the database commit,
so a failed publish never loses a transition (the edge re-holds on the next `hold`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from central.alerts.workflow import Action, State, decide, is_overdue, permission_for
from central.errors import ForbiddenError, InvalidInputError, NotFoundError
from central.regulation.roles import can
from central.regulation.scope import Scope, in_scope, scope_filter
from central.regulation.users import User
from central.schema import LockedDb
from fsv_contract import EventPayload
from fsv_contract.commands import HOLD, RELEASE, HoldArgs, ReleaseArgs

log = logging.getLogger(__name__)

UNASSIGNED = "/"
# How much video around an event is held: the lead-up matters as much as the act.
HOLD_BEFORE_S = 60.0
HOLD_AFTER_S = 120.0
# An event still running has no end yet; hold this much past its start until it ends.
OPEN_EVENT_HOLD_S = 1800.0
MAX_PAGE = 500
MAX_DEADLINE_DAYS = 366  # a rectification deadline is at most about a year ahead
MAX_COUNT = 10_000

# (site, verb, args) -> request id; publishes a command to the edge.
CommandSender = Callable[[str, str, dict[str, Any]], str]
# (connection, new alert rows, now) -> jobs written; runs inside the alerts' transaction.
OnCreated = Callable[[Any, Sequence[dict[str, Any]], float], int]
# (op "created"/"changed", the alert as the API shows it, open alerts of its camera or None);
# called after the commit, for the pages' live updates.
Announce = Callable[[str, dict[str, Any], int | None], None]


@dataclass(frozen=True)
class Recorded:
    """What recording one event did to its alert (`AlertStore.record_events_in`)."""

    row: dict[str, Any]  # the alert as stored once all the events were applied
    created: bool  # the event created the alert
    changed: bool  # the event updated an existing alert (media or end)
    end: float | None  # the event's end, when it brought one
    now: float


@dataclass(frozen=True)
class AlertQuery:
    """Filters of an alert listing; every field optional."""

    org_path: str | None = None
    site_id: str | None = None
    camera_id: str | None = None
    station: str | None = None
    kind: str | None = None
    severity: str | None = None
    states: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None
    overdue: bool | None = None
    text: str | None = None
    limit: int = 50
    offset: int = 0


def hold_args(alert: dict[str, Any]) -> dict[str, Any]:
    """Arguments of the `hold` command for an alert's evidence range (contract HoldArgs)."""
    start = float(alert["start"])
    end = float(alert["end"]) if alert.get("end") else start + OPEN_EVENT_HOLD_S
    args = HoldArgs(
        ref=f"alert:{alert['id']}",
        camera=alert["camera_id"],
        start=datetime.fromtimestamp(start - HOLD_BEFORE_S, UTC),
        end=datetime.fromtimestamp(end + HOLD_AFTER_S, UTC),
        reason=f"alert {alert['kind']}"[:200],
    )
    return args.model_dump(mode="json")


def release_args(alert_id: str) -> dict[str, Any]:
    """Arguments of the `release` command of an alert's hold (contract ReleaseArgs)."""
    return ReleaseArgs(ref=f"alert:{alert_id}").model_dump(mode="json")


def public_alert(row: dict[str, Any], now: float) -> dict[str, Any]:
    """An alert row as the API returns it, with the overdue flag computed."""
    out = dict(row)
    for key in ("snapshot", "clip", "first_clip", "frame"):
        out[key] = json.loads(row[key]) if row.get(key) else None
    out["overdue"] = is_overdue(State(row["state"]), row.get("deadline"), now)
    return out


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class AlertStore:
    """Alerts in central's database; every read and write checks the caller's scope."""

    def __init__(
        self,
        ldb: LockedDb,
        send_command: CommandSender | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ldb = ldb
        self._send = send_command
        self._clock = clock
        # Set by the services: the push jobs of a new alert, committed with the alert.
        self.on_created: OnCreated | None = None
        # Set by the services: tells the open pages about a new or changed alert.
        self.announce: Announce | None = None

    # --- from ingest ------------------------------------------------------------------------

    def record_events_in(
        self, db: Any, events: Sequence[EventPayload], org_paths: dict[str, str]
    ) -> list[Recorded]:
        """Open or update the alerts of `events`, in order, inside the caller's transaction,
        with the push jobs of the new ones (`on_created`); one `Recorded` per event.

        A few statements whatever the number of events: the alerts are read in one query,
        written in one statement each way (insert, update), read back in one. An event
        repeated or ended within `events` updates the alert its earlier one created.
        Call `after_recorded` once the transaction has committed.
        """
        now = self._clock()
        ids = list(dict.fromkeys(str(e.event_id) for e in events))
        held = _alerts_by_id(db, ids)
        new: dict[str, dict[str, Any]] = {}  # alert id -> row to insert (with later changes)
        created_rows: list[dict[str, Any]] = []  # as created, for the push jobs
        updates: dict[str, dict[str, Any]] = {}  # alert id -> changes to an existing alert
        steps: list[tuple[str, bool, bool, float | None]] = []
        for event in events:
            alert_id = str(event.event_id)
            end = event.end.timestamp() if event.end else None
            media = {
                "snapshot": event.snapshot.model_dump_json() if event.snapshot else None,
                "clip": event.clip.model_dump_json() if event.clip else None,
                "first_clip": event.first_clip.model_dump_json() if event.first_clip else None,
                "frame": event.frame.model_dump_json() if event.frame else None,
            }
            existing = held.get(alert_id)
            if existing is not None:
                changes: dict[str, Any] = {k: v for k, v in media.items() if v and not existing[k]}
                if end is not None and existing["end"] is None:
                    changes["end"] = end
                if changes:
                    changes["updated_at"] = now
                    existing.update(changes)
                    if alert_id in new:
                        new[alert_id].update(changes)
                    else:
                        updates.setdefault(alert_id, {}).update(changes)
                steps.append((alert_id, False, bool(changes), end))
                continue
            created = {
                "id": alert_id,
                "site_id": event.site,
                "camera_id": event.camera,
                "org_path": org_paths.get(event.site, UNASSIGNED),
                "kind": event.kind,
                "station": event.station,
                "rule": event.rule,
                "severity": event.severity,
                "start": event.start.timestamp(),
                "end": end,
                "score": event.score,
                "model": event.model,
                **media,
                "state": State.NEW.value,
                "created_at": now,
                "updated_at": now,
            }
            created_rows.append(dict(created))
            new[alert_id] = created
            held[alert_id] = dict(created)
            steps.append((alert_id, True, False, end))
        if new:
            columns = list(created_rows[0])
            names = ", ".join(f'"{c}"' for c in columns)
            db.conn.executemany(
                f"insert into alerts ({names}) values ({', '.join('?' * len(columns))})",
                [[row[c] for c in columns] for row in new.values()],
            )
        for alert_id, changes in updates.items():
            db.table("alerts").update(alert_id, changes)
        if created_rows and self.on_created is not None:
            self.on_created(db, created_rows, now)
        rows = _alerts_by_id(db, ids)
        return [
            Recorded(rows[alert_id], created, changed, end, now)
            for alert_id, created, changed, end in steps
        ]

    def after_recorded(self, recorded: Sequence[Recorded]) -> None:
        """What follows the commit of `record_events_in`, once per alert: tell the open
        pages it was created or changed, and ask its edge to hold the evidence while it is
        open (when an event created or ended it); the hold requests are noted in one
        transaction. Never raises. Several events of one alert count as one change, told
        with the alert as it now stands."""
        alerts: dict[str, list[Recorded]] = {}
        for r in recorded:
            alerts.setdefault(str(r.row["id"]), []).append(r)
        told = [s[-1].row for s in alerts.values() if any(r.created or r.changed for r in s)]
        open_alerts: dict[Any, int] | None = None  # None: each announcement reads its own
        if self.announce is not None and told:
            try:
                cameras = [(r["site_id"], r["camera_id"]) for r in told if r["camera_id"]]
                open_alerts = self._open_alerts(cameras)
            except Exception:  # noqa: BLE001 - pages re-sync on their next list request
                log.exception("could not read the open alerts of %d cameras", len(told))
        requests: list[tuple[str, str]] = []
        for steps in alerts.values():
            row, now = steps[-1].row, steps[-1].now
            created = any(r.created for r in steps)
            if created or any(r.changed for r in steps):
                self._announce("created" if created else "changed", row, now, open_alerts)
            holds = created or any(r.end is not None for r in steps)
            if holds and row["state"] != State.CLOSED and row["camera_id"]:
                request_id = self._send_command(row, HOLD, hold_args(row))
                if request_id is not None:
                    requests.append((request_id, str(row["id"])))
        if not requests:
            return
        try:
            with self._ldb.transaction() as db:
                db.conn.executemany("update alerts set hold_request_id = ? where id = ?", requests)
        except Exception:  # noqa: BLE001 - the alerts are committed; the edge holds anyway
            log.exception("could not note the hold requests of %d alerts", len(requests))

    def _announce(
        self, op: str, row: dict[str, Any], now: float, open_alerts: dict[Any, int] | None = None
    ) -> None:
        """Tell the open pages (never raises: the change itself is committed). The camera's
        open alerts are read now unless given (`open_alerts`, by (site, camera))."""
        if self.announce is None:
            return
        try:
            count = None
            if row["camera_id"]:
                camera = (row["site_id"], row["camera_id"])
                if open_alerts is None:
                    open_alerts = self._open_alerts([camera])
                count = open_alerts.get(camera, 0)
            self.announce(op, public_alert(row, now), count)
        except Exception:  # noqa: BLE001 - pages re-sync on their next list request
            log.exception("could not announce alert %s", row.get("id"))

    def _open_alerts(self, cameras: Sequence[tuple[str, str]]) -> dict[Any, int]:
        """How many open alerts each camera has (one read)."""
        pairs = sorted(set(cameras))
        out: dict[Any, int] = {}
        if not pairs:
            return out
        with self._ldb.read() as db:
            for start in range(0, len(pairs), 200):
                chunk = pairs[start : start + 200]
                where = " or ".join("(site_id = ? and camera_id = ?)" for _ in chunk)
                for r in db.execute(
                    f"select site_id, camera_id, open from camera_open_alerts where {where}",
                    [v for pair in chunk for v in pair],
                ).fetchall():
                    out[(r[0], r[1])] = int(r[2])
        return out

    # --- reads ------------------------------------------------------------------------------

    def _row(self, alert_id: str) -> dict[str, Any]:
        with self._ldb.lock:
            rows = list(self._ldb.db.query("select * from alerts where id = ?", [alert_id]))
        if not rows:
            raise NotFoundError(f"alert {alert_id} not found")
        return dict(rows[0])

    def get(self, scope: Scope, alert_id: str) -> dict[str, Any]:
        """One alert with its transitions and evidence; NotFoundError outside `scope`."""
        try:
            row = self._row(alert_id)
        except NotFoundError:
            raise
        if not in_scope(scope, row["org_path"]):
            raise NotFoundError(f"alert {alert_id} not found")
        out = public_alert(row, self._clock())
        with self._ldb.lock:
            db = self._ldb.db
            out["transitions"] = [
                dict(r)
                for r in db.query(
                    "select * from alert_transitions where alert_id = ? order by id", [alert_id]
                )
            ]
            out["evidence"] = [
                {k: v for k, v in dict(r).items() if k != "path"}
                for r in db.query(
                    "select * from evidence where alert_id = ? order by id", [alert_id]
                )
            ]
        return out

    def list_alerts(self, scope: Scope, query: AlertQuery) -> dict[str, Any]:
        """A page of alerts in scope matching `query`, newest first, with the total count."""
        where, args = self._where(scope, query)
        limit = max(1, min(query.limit, MAX_PAGE))
        with self._ldb.read() as db:
            # Counting stops at MAX_COUNT: a city's full history is not counted per page.
            total = db.execute(
                f"select count(*) from (select 1 from alerts where {where} limit ?) page",
                [*args, MAX_COUNT + 1],
            ).fetchone()[0]
            rows = db.query(
                f"select * from alerts where {where} order by created_at desc, id limit ? offset ?",
                [*args, limit, max(0, query.offset)],
            )
            now = self._clock()
            items = [public_alert(dict(r), now) for r in rows]
        return {
            "items": items,
            "total": min(total, MAX_COUNT),
            "total_exact": total <= MAX_COUNT,
            "limit": limit,
            "offset": query.offset,
        }

    def _where(self, scope: Scope, q: AlertQuery) -> tuple[str, list[Any]]:
        clause, params = scope_filter(scope)
        clauses, args = [clause], list[Any](params)
        if q.org_path is not None:
            sub, sub_args = scope_filter(Scope(q.org_path))
            clauses.append(sub)
            args += sub_args
        for column, value in (
            ("site_id", q.site_id),
            ("camera_id", q.camera_id),
            ("station", q.station),
            ("kind", q.kind),
            ("severity", q.severity),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if q.states:
            clauses.append(f"state in ({', '.join('?' for _ in q.states)})")
            args += list(q.states)
        if q.since is not None:
            clauses.append("start >= ?")
            args.append(q.since)
        if q.until is not None:
            clauses.append("start < ?")
            args.append(q.until)
        if q.text:
            # Literal words: LIKE's wildcards in what the user typed match themselves. Any
            # case (SQLite's LIKE ignores ASCII case, PostgreSQL's does not: both lowered).
            like = "%" + q.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            like = like.translate(_ASCII_LOWER)  # lower() of both engines (C): ASCII only
            clauses.append(
                "(lower(site_id) like ? escape '\\' or lower(camera_id) like ? escape '\\' "
                "or lower(rule) like ? escape '\\' or org_path in "
                "(select org_path from orgs where lower(name) like ? escape '\\'))"
            )
            args += [like] * 4
        if q.overdue is not None:
            test = "(state = ? and deadline is not null and deadline < ?)"
            clauses.append(test if q.overdue else f"not {test}")
            args += [State.RECTIFICATION_REQUESTED.value, self._clock()]
        return " and ".join(clauses), args

    # --- workflow ---------------------------------------------------------------------------

    def transition(
        self,
        user: User,
        alert_id: str,
        action: Action,
        *,
        note: str = "",
        deadline: float | None = None,
        ip: str = "",
        evidence: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Apply one workflow step for `user`; returns the transition row."""
        if not can(user.role, permission_for(action)):
            raise ForbiddenError(f"a {user.role.value} may not {action.value}")
        now = self._clock()
        if deadline is not None and not now < deadline <= now + MAX_DEADLINE_DAYS * 86400:
            raise InvalidInputError(
                f"the deadline must lie in the future, at most {MAX_DEADLINE_DAYS} days ahead"
            )
        if action is Action.SUBMIT_RECTIFICATION and not evidence:
            raise InvalidInputError("a rectification needs at least one evidence photo")
        with self._ldb.transaction() as db:
            rows = list(db.query("select * from alerts where id = ?", [alert_id]))
            if not rows or not in_scope(user.scope, rows[0]["org_path"]):
                raise NotFoundError(f"alert {alert_id} not found")
            alert = dict(rows[0])
            step = decide(State(alert["state"]), action, note=note, deadline=deadline)
            row = {
                "alert_id": alert_id,
                "ts": now,
                "user_id": user.id,
                "username": user.username,
                "action": action.value,
                "from_state": step.before.value,
                "to_state": step.after.value,
                "note": note,
                "deadline": deadline,
                "ip": ip,
            }
            tid = db.table("alert_transitions").insert(row).last_pk
            db.table("alerts").update(
                alert_id, self._alert_changes(alert, step.after, now, deadline)
            )
            for item in evidence or list[dict[str, Any]]():
                db.table("evidence").insert({**item, "alert_id": alert_id, "transition_id": tid})
        self._announce("changed", self._row(alert_id), now)
        if step.closes and alert["camera_id"]:
            self._command(alert, RELEASE, release_args(alert_id))
        elif step.opens and alert["camera_id"]:
            self._command(alert, HOLD, hold_args(alert))
        return {**row, "id": tid}

    @staticmethod
    def _alert_changes(
        alert: dict[str, Any], after: State, now: float, deadline: float | None
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {"state": after.value, "updated_at": now}
        # The first time of each milestone is what the reports measure.
        first = {
            State.ACKNOWLEDGED: "acknowledged_at",
            State.RECTIFICATION_REQUESTED: "requested_at",
            State.RECTIFICATION_SUBMITTED: "submitted_at",
        }
        column = first.get(after)
        if column and alert[column] is None:
            changes[column] = now
        if after is State.RECTIFICATION_REQUESTED:
            changes["deadline"] = deadline
            # Requesting a rectification implies the alert was seen.
            if alert["acknowledged_at"] is None:
                changes["acknowledged_at"] = now
        if after is State.CLOSED:
            changes["closed_at"] = now
        if after is State.REOPENED:
            changes["closed_at"] = None
        return changes

    def evidence_file(self, scope: Scope, alert_id: str, evidence_id: int) -> dict[str, Any]:
        """The evidence row (with its stored path) of an alert in scope."""
        self.get(scope, alert_id)
        with self._ldb.lock:
            rows = list(
                self._ldb.db.query(
                    "select * from evidence where id = ? and alert_id = ?", [evidence_id, alert_id]
                )
            )
        if not rows:
            raise NotFoundError(f"evidence {evidence_id} not found")
        return dict(rows[0])

    def media_file(
        self, scope: Scope, alert_id: str, name: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The alert and the stored media row (snapshot or clip uploaded by the edge)."""
        alert = self.get(scope, alert_id)
        with self._ldb.lock:
            rows = list(
                self._ldb.db.query(
                    "select * from media where event_id = ? and name = ?", [alert_id, name]
                )
            )
        if not rows or not Path(rows[0]["path"]).is_file():
            raise NotFoundError(f"media {name!r} of alert {alert_id} is not uploaded (yet)")
        return alert, dict(rows[0])

    def _command(self, alert: dict[str, Any], verb: str, args: dict[str, Any]) -> None:
        request_id = self._send_command(alert, verb, args)
        if request_id is None:
            return
        with self._ldb.transaction() as db:
            db.table("alerts").update(alert["id"], {"hold_request_id": request_id})

    def _send_command(self, alert: dict[str, Any], verb: str, args: dict[str, Any]) -> str | None:
        """Publish a command about an alert; its request id (None: not sent)."""
        if self._send is None:
            return None
        try:
            return self._send(alert["site_id"], verb, args)
        except Exception:  # noqa: BLE001 - a broker hiccup must not undo a committed transition
            log.exception("could not send %s for alert %s", verb, alert["id"])
            return None


def _alerts_by_id(db: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored alerts among `ids`, by id (a query per 500)."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for r in db.query(f"select * from alerts where id in ({marks})", chunk):
            found[r["id"]] = dict(r)
    return found
