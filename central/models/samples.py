"""Sample frames asked of an edge for labelling, the frames it sent, and their labels.

A request (`sample_frames` command) gets a batch id; the edge's reply announces each frame
(`sample-NNN.jpg`, SHA-256, size, time) and the edge then PUTs the files to the media
endpoint under the batch id. Central accepts only an announced file with its announced hash
(write-once, like event media); stored frames join the labelling queue of the same scope.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from central.errors import ConflictError, InvalidInputError, NotFoundError
from central.models.labels import LabelIn, LabelStore
from central.regulation.scope import Scope, in_scope, scope_filter
from central.regulation.users import User
from central.schema import LockedDb
from fsv_contract.models import MAX_SAMPLES, SampleFrame, SampleFramesArgs
from fsv_contract.payloads import LEVEL_PATTERN

if TYPE_CHECKING:
    from central.ingest.media import Announced
    from central.storage.db import CentralDatabase

log = logging.getLogger(__name__)

EVENT_JITTER_S = 20.0  # frames "around" an event: up to this far before or after its start
DEFAULT_DAYS = 7.0
_REQUEST_FIELDS = (
    "batch_id", "request_id", "camera_id", "count", "mode", "requested_by", "requested_at",
    "error", "stored",
)  # fmt: skip


class SampleRequestIn(BaseModel):
    """Which frames to ask a site's edge for."""

    model_config = ConfigDict(extra="forbid")

    camera: str = Field(pattern=LEVEL_PATTERN)
    count: int = Field(10, ge=1, le=MAX_SAMPLES)
    mode: Literal["random", "events"] = Field(
        "random", description="random instants of the recordings, or around the camera's alerts"
    )
    since: float | None = Field(None, description="epoch seconds; default a week ago")
    until: float | None = Field(None, description="epoch seconds; default now")

    @model_validator(mode="after")
    def _ordered(self) -> SampleRequestIn:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        return self


def announced_sample(database: CentralDatabase, site: str, batch: str, name: str) -> Announced:
    """A sample frame the edge's reply announced; NotFound until the reply is in."""
    from central.ingest.media import Announced

    with database.lock:
        row = database.db.execute(
            "select s.site_id, s.camera_id, s.org_path, c.result from sample_requests s "
            "left join commands c on c.request_id = s.request_id where s.batch_id = ?",
            [batch],
        ).fetchone()
    if row is None or row[0] != site:
        raise NotFoundError(f"event {batch} is not known (yet) for site {site}")
    frames = json.loads(row[3]).get("frames", []) if row[3] else []
    # The box wrote the reply: a frame in a shape the contract does not allow is refused.
    for raw in frames if isinstance(frames, list) else []:
        if isinstance(raw, dict) and raw.get("name") == name:
            try:
                frame = SampleFrame.model_validate(raw)
            except ValidationError as e:
                log.warning("site %s announced sample %s/%s malformed: %s", site, batch, name,
                            str(e)[:300])  # fmt: skip
                raise ConflictError(
                    f"sample batch {batch} announces frame {name!r} malformed "
                    f"({e.error_count()} error(s)): it cannot be uploaded"
                ) from e
            return Announced(
                frame.sha256,
                frame.bytes,
                "image/jpeg",
                {"batch_id": batch, "site_id": row[0], "camera_id": row[1], "org_path": row[2],
                 "ts": frame.ts.timestamp()},
            )  # fmt: skip
    if row[3] is None:
        raise NotFoundError(f"sample batch {batch}: the edge's reply has not arrived yet")
    raise ConflictError(f"sample batch {batch} announces no frame named {name!r}")


def record_sample(db: Any, ann: Announced, name: str, now: float) -> None:
    """Enter a stored sample frame into the labelling queue (inside the media transaction)."""
    assert ann.sample is not None
    db.execute(
        "insert into sample_frames (batch_id, name, site_id, camera_id, org_path, ts, "
        "sha256, stored_at) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing",
        [ann.sample["batch_id"], name, ann.sample["site_id"], ann.sample["camera_id"],
         ann.sample["org_path"], ann.sample["ts"], ann.sha256, now],
    )  # fmt: skip


class SampleStore:
    """Sample requests, frames and labels; every call checks the caller's scope."""

    def __init__(
        self,
        ldb: LockedDb,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._ldb = ldb
        self._clock = clock
        self._rng = rng or random.Random()

    def plan(self, scope: Scope, site_id: str, body: SampleRequestIn) -> tuple[str, dict[str, Any]]:
        """A new batch id and the command's arguments; around-event times from the alerts."""
        with self._ldb.read() as db:
            site = list(db.query("select org_path from sites where id = ?", [site_id]))
            if not site or not in_scope(scope, site[0]["org_path"]):
                raise NotFoundError(f"site {site_id} not found")
            until = body.until if body.until is not None else self._clock()
            since = body.since if body.since is not None else until - DEFAULT_DAYS * 86400
            starts = [
                float(r["start"])
                for r in db.query(
                    "select start from alerts where site_id = ? and camera_id = ? and start >= ? "
                    "and start < ? order by start desc limit 1000",
                    [site_id, body.camera, since, until],
                )
            ]
        batch = str(uuid.uuid4())
        args: dict[str, Any] = {"batch": batch, "camera": body.camera, "count": body.count,
                                "mode": body.mode}  # fmt: skip
        if body.mode == "events":
            if not starts:
                raise InvalidInputError(
                    f"camera: {body.camera} of site {site_id} has no alert in the time asked for"
                )
            chosen = self._rng.sample(starts, min(body.count, len(starts)))
            times = sorted(t + self._rng.uniform(-EVENT_JITTER_S, EVENT_JITTER_S) for t in chosen)
            args["times"] = [datetime.fromtimestamp(t, UTC).isoformat() for t in times]
        else:
            args["since"] = datetime.fromtimestamp(since, UTC).isoformat()
            args["until"] = datetime.fromtimestamp(until, UTC).isoformat()
        SampleFramesArgs.model_validate(args)  # what the edge will check
        return batch, args

    def record(
        self, user: User, site_id: str, batch: str, request_id: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        """Keep a sent request; returns its row."""
        with self._ldb.transaction() as db:
            org_path = next(iter(db.query("select org_path from sites where id = ?", [site_id])))
            row = {
                "batch_id": batch,
                "request_id": request_id,
                "site_id": site_id,
                "camera_id": args["camera"],
                "org_path": org_path["org_path"],
                "count": args["count"],
                "mode": args["mode"],
                "requested_by": user.username,
                "requested_at": self._clock(),
            }
            db.table("sample_requests").insert(row)
        return row

    def requests(self, scope: Scope, site_id: str) -> list[dict[str, Any]]:
        """A site's sample requests, newest first, with the edge's reply and frames stored."""
        with self._ldb.read() as db:
            site = list(db.query("select org_path from sites where id = ?", [site_id]))
            if not site or not in_scope(scope, site[0]["org_path"]):
                raise NotFoundError(f"site {site_id} not found")
            rows = list(
                db.query(
                    "select s.*, c.ok, c.error, c.replied_at, "
                    "(select count(*) from sample_frames f where f.batch_id = s.batch_id) "
                    "as stored from sample_requests s left join commands c "
                    "on c.request_id = s.request_id where s.site_id = ? "
                    "order by s.requested_at desc limit 100",
                    [site_id],
                )
            )
        out = []
        for r in rows:
            item = {k: r[k] for k in _REQUEST_FIELDS}
            item["state"] = "sent" if r["replied_at"] is None else ("done" if r["ok"] else "failed")
            out.append(item)
        return out

    def queue_items(self, scope: Scope, state: str, limit: int) -> list[dict[str, Any]]:
        """Stored sample frames in scope (newest first) as labelling queue items."""
        clause, args = scope_filter(scope, "f.org_path")
        labelled = {"unlabelled": "l.batch_id is null", "labelled": "l.batch_id is not null"}
        where = " and ".join([clause, labelled.get(state, "1 = 1")])
        with self._ldb.read() as db:
            rows = list(
                db.query(
                    "select f.*, l.verdict, l.boxes, l.username, l.labelled_at "
                    "from sample_frames f left join sample_labels l "
                    "on l.batch_id = f.batch_id and l.name = f.name "
                    f"where {where} order by f.ts desc, f.batch_id, f.name limit ?",
                    [*args, limit],
                )
            )
        return [_queue_item(dict(r)) for r in rows]

    def set_label(
        self, user: User, batch: str, name: str, body: LabelIn
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Store the caller's label of a sample frame in scope: (the label, the frame row)."""
        with self._ldb.transaction() as db:
            frame = self._frame(db, user.scope, batch, name)
            LabelStore.check_classes(db, frame["site_id"], body)
            row = {
                "batch_id": batch,
                "name": name,
                "site_id": frame["site_id"],
                "verdict": body.verdict,
                "boxes": json.dumps([b.model_dump() for b in body.boxes]),
                "user_id": user.id,
                "username": user.username,
                "labelled_at": self._clock(),
            }
            db.table("sample_labels").upsert(row, pk=("batch_id", "name"))
        return _public_label(row), frame

    def frame(self, scope: Scope, batch: str, name: str) -> dict[str, Any]:
        """A stored sample frame in scope, with the path of its file."""
        with self._ldb.read() as db:
            frame = self._frame(db, scope, batch, name)
            media = list(
                db.query("select path from media where event_id = ? and name = ?", [batch, name])
            )
        if not media:
            raise NotFoundError(f"sample {batch}/{name} not found")
        return {**frame, "path": media[0]["path"]}

    @staticmethod
    def _frame(db: Any, scope: Scope, batch: str, name: str) -> dict[str, Any]:
        rows = list(
            db.query("select * from sample_frames where batch_id = ? and name = ?", [batch, name])
        )
        if not rows or not in_scope(scope, rows[0]["org_path"]):
            raise NotFoundError(f"sample {batch}/{name} not found")
        return dict(rows[0])


def _public_label(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "verdict": row["verdict"],
        "boxes": json.loads(row["boxes"]),
        "username": row["username"],
        "labelled_at": row["labelled_at"],
    }


def _queue_item(row: dict[str, Any]) -> dict[str, Any]:
    path = f"/api/v1/samples/{row['batch_id']}/{row['name']}"
    return {
        "kind": "sample",
        "id": f"{row['batch_id']}/{row['name']}",
        "site_id": row["site_id"],
        "camera_id": row["camera_id"],
        "alert_kind": None,
        "station": None,
        "start": row["ts"],
        "model": None,
        "image": path,
        "annotated": False,
        "label_url": f"{path}/label",
        "detections": [],
        "label": None if row["verdict"] is None else _public_label(row),
    }
