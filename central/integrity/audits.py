"""Integrity audits: central asks a site to prove random anchored segments with their files.

An audit is a row in `integrity_audits`: `requested` (by the schedule, the API or the CLI),
then `sent` (the `audit` command is out, with the samples picked at random across the
retention period), then `done` (every proof compared with the anchored SHA-256; each
mismatch is a `footage_tampered` finding) or `unanswered` (no reply in time: the box is
offline, which the availability alerts already report, so it is not called tampering).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import sqlite_utils
from pydantic import ValidationError

from central.integrity.anchors import DAY_S, early_deletion
from central.integrity.findings import Finding, audit_system, report
from central.integrity.prune import BATCH, MARGIN_S, Pruned, prune_anchors
from central.storage.db import CentralDatabase
from fsv_contract.integrity import (
    MAX_AUDIT_SAMPLES,
    VERB_AUDIT,
    AuditArgs,
    AuditProof,
    AuditResult,
    Tombstone,
)

log = logging.getLogger(__name__)

# A segment this close to its retention date may be deleted while the audit is in flight.
NEAR_DUE_S = DAY_S
PRUNE_EVERY_S = DAY_S  # how often anchored links past their retention are pruned


class CommandLink(Protocol):
    """central.ingest.commands.Commands, as audits use it."""

    def send(self, site: str, verb: str, args: dict[str, Any], ttl_s: float | None = None) -> str:
        """Publish a command; returns its request id."""
        ...

    def get(self, request_id: str) -> dict[str, Any] | None:
        """The command row with its reply."""
        ...


@dataclass(frozen=True)
class AuditSettings:
    """How audits run (from the config's `integrity` section)."""

    interval_s: float = 6 * 3600.0
    samples_per_camera: int = 3
    reply_timeout_s: float = 900.0
    anchor_margin_s: float = MARGIN_S  # anchored links kept this long past retention


class Audits:
    """Requests, sends and evaluates integrity audits (worker threads; never the event loop)."""

    def __init__(
        self,
        database: CentralDatabase,
        settings: AuditSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.settings = settings or AuditSettings()
        self._clock = clock
        self._pruned_at: float | None = None

    def request(
        self, site: str, camera: str | None = None, samples: int | None = None, by: str = ""
    ) -> int:
        """Queue an audit of a site (one camera, or all); returns its id."""
        with self.database.transaction() as db:
            cur = db.execute(
                "insert into integrity_audits (site, camera, samples_wanted, requested_by, "
                "requested_at, state) values (?, ?, ?, ?, ?, 'requested') returning id",
                [site, camera, samples or self.settings.samples_per_camera, by, self._clock()],
            )
            return int(cur.fetchone()[0])

    def get(self, audit_id: int) -> dict[str, Any] | None:
        """One audit row, its result decoded."""
        rows = self._rows("select * from integrity_audits where id = ?", [audit_id])
        if not rows:
            return None
        row = rows[0]
        row["result"] = json.loads(row["result"]) if row["result"] else None
        return row

    # --- the worker's rounds ---------------------------------------------------------------

    def run_round(self, commands: CommandLink) -> None:
        """Schedule due audits, send requested ones, evaluate replies (one worker round);
        once a day, prune the anchored links nobody needs any more."""
        if self._pruned_at is None or self._clock() - self._pruned_at >= PRUNE_EVERY_S:
            try:
                self.prune()
            except Exception:  # noqa: BLE001 - audits must go on; pruning is tried tomorrow
                log.exception("pruning anchored links failed")
                self._pruned_at = self._clock()
        self.schedule()
        for row in self._rows("select * from integrity_audits where state = 'requested'", []):
            self._send(commands, row)
        for row in self._rows("select * from integrity_audits where state = 'sent'", []):
            self._collect(commands, row)

    def prune(self, batch: int = BATCH) -> list[Pruned]:
        """Prune anchored links past retention (central.integrity.prune), one batch per
        camera; a camera with more left is pruned again at the next round."""
        now = self._clock()
        with self.database.transaction() as db:
            done = prune_anchors(db, now, self.settings.anchor_margin_s, batch)
        for p in done:
            log.info("pruned %d anchored links of %s/%s", p.links, p.site, p.camera)
        if all(p.links < batch for p in done):
            self._pruned_at = now
        return done

    def schedule(self) -> list[int]:
        """Request an audit of every anchored site whose last one is older than the interval."""
        now = self._clock()
        due = self._rows(
            "select s.site from (select distinct site from chain_heads) s "
            "left join (select site, max(requested_at) last from integrity_audits "
            "where requested_by = 'schedule' group by site) a on a.site = s.site "
            "where a.last is null or a.last <= ?",
            [now - self.settings.interval_s],
        )
        return [self.request(r["site"], by="schedule") for r in due]

    def _send(self, commands: CommandLink, row: dict[str, Any]) -> None:
        samples = self.pick(row["site"], row["camera"], int(row["samples_wanted"]))
        now = self._clock()
        if not samples:
            self._finish(row["id"], "done", {"proofs": [], "note": "nothing anchored to audit"})
            return
        args = AuditArgs.model_validate({"samples": samples}).model_dump(mode="json")
        try:
            request_id = commands.send(row["site"], VERB_AUDIT, args, self.settings.reply_timeout_s)
        except Exception as e:  # noqa: BLE001 - not connected yet: the next round tries again
            log.warning("cannot send audit %s to %s yet: %s", row["id"], row["site"], e)
            return
        with self.database.transaction() as db:
            db.execute(
                "update integrity_audits set state = 'sent', request_id = ?, sent_at = ?, "
                "result = ? where id = ?",
                [request_id, now, json.dumps({"samples": samples}), row["id"]],
            )

    def pick(self, site: str, camera: str | None, per_camera: int) -> list[dict[str, str]]:
        """Random anchored segments of each camera, across the whole retention period."""
        now = self._clock()
        cams = [camera] if camera else [
            r["camera"] for r in self._rows(
                "select camera from chain_heads where site = ? order by camera", [site]
            )
        ]  # fmt: skip
        picked: list[dict[str, str]] = []
        for cam in cams:
            rows = self._rows(
                "select camera, path from anchored_segments where site = ? and camera = ? "
                'and removed_at is null and "end" + retention_days * ? > ? '
                "order by random() limit ?",
                [site, cam, DAY_S, now + NEAR_DUE_S, per_camera],
            )
            picked += [{"camera": r["camera"], "path": r["path"]} for r in rows]
        # One command proves at most MAX_AUDIT_SAMPLES: on a large site each audit covers
        # another random part of its cameras.
        random.shuffle(picked)
        return picked[:MAX_AUDIT_SAMPLES]

    def _collect(self, commands: CommandLink, row: dict[str, Any]) -> None:
        command = commands.get(row["request_id"])
        now = self._clock()
        if command is None or command.get("replied_at") is None:
            if now - float(row["sent_at"]) > self.settings.reply_timeout_s:
                self._finish(row["id"], "unanswered", json.loads(row["result"] or "{}"))
            return
        if not command.get("ok"):
            self._finish(row["id"], "failed", {"error": command.get("error")})
            return
        try:
            proofs = AuditResult.model_validate(command.get("result") or {}).proofs
        except ValidationError as e:
            self._finish(row["id"], "failed", {"error": f"malformed proofs: {e.error_count()}"})
            return
        self._evaluate(row, proofs)

    def _evaluate(self, row: dict[str, Any], proofs: list[AuditProof]) -> None:
        site, now = row["site"], self._clock()
        asked = {(s["camera"], s["path"]) for s in json.loads(row["result"])["samples"]}
        findings: list[Finding] = []
        outcomes: list[dict[str, Any]] = []
        with self.database.durable_transaction() as db:
            answered = set()
            for proof in proofs:
                if (proof.camera, proof.path) not in asked:
                    continue
                answered.add((proof.camera, proof.path))
                problem = _judge(db, site, proof, now)
                ok = problem is None
                db.execute(
                    "update anchored_segments set audited = audited + 1, last_audit_at = ?, "
                    "last_audit_ok = ? where site = ? and camera = ? and path = ?",
                    [now, int(ok), site, proof.camera, proof.path],
                )
                outcomes.append({"camera": proof.camera, "path": proof.path, "ok": ok,
                                 "state": proof.state, "problem": problem})  # fmt: skip
                if problem is not None:
                    findings.append(Finding(site, proof.camera, proof.path, problem))
            for cam, path in sorted(asked - answered):
                findings.append(Finding(site, cam, path, "the box did not answer for it"))
                outcomes.append({"camera": cam, "path": path, "ok": False, "state": "unanswered",
                                 "problem": "the box did not answer for it"})  # fmt: skip
            report(db, findings, "audit", now)
            result = {"proofs": outcomes}
            db.execute(
                "update integrity_audits set state = 'done', finished_at = ?, checked = ?, "
                "tampered = ?, result = ? where id = ?",
                [now, len(outcomes), len(findings), json.dumps(result), row["id"]],
            )
            detail: dict[str, object] = {"audit": row["id"], "checked": len(outcomes),
                                         "tampered": len(findings)}  # fmt: skip
            audit_system(db, "integrity_audit", site, f"site:{site}", detail, now)

    def _finish(self, audit_id: int, state: str, result: dict[str, Any]) -> None:
        with self.database.transaction() as db:
            db.execute(
                "update integrity_audits set state = ?, finished_at = ?, checked = 0, "
                "tampered = 0, result = ? where id = ?",
                [state, self._clock(), json.dumps(result), audit_id],
            )

    def _rows(self, sql: str, args: list[Any]) -> list[dict[str, Any]]:
        with self.database.lock:
            cur = self.database.db.execute(sql, args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _judge(db: sqlite_utils.Database, site: str, proof: AuditProof, now: float) -> str | None:
    """What is wrong with one proof against the anchored segment, or None."""
    row = db.execute(
        'select sha256, bytes, "end", retention_days, removed_at from anchored_segments '
        "where site = ? and camera = ? and path = ?",
        [site, proof.camera, proof.path],
    ).fetchone()
    if row is None or row[4] is not None:
        return None  # deleted legitimately meanwhile (its tombstone was checked)
    sha, size, end, days = row[0], int(row[1]), float(row[2]), int(row[3])
    if proof.state == "present":
        if proof.sha256 != sha or proof.bytes != size:
            return f"file on disk differs from the anchored SHA-256 ({size} bytes anchored)"
        if proof.indexed is False:
            return "file present but no longer in the box's index"
        return None
    if proof.state == "removed":
        tomb = Tombstone(path=proof.path, chain="0" * 64, removed_at=proof.removed_at or now,
                         reason=proof.removed_reason or "")  # fmt: skip
        return early_deletion(db, site, tomb, end, days)
    if proof.state == "unreadable":
        return "file unreadable on the box"
    return "file missing on the box"
