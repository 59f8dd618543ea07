"""Inspectors' verdicts on alerts as training labels, and each site's class map.

A label says whether an alert was a true violation and which objects the snapshot really
shows: boxes in relative coordinates (0..1), each with a class from the site's class map.
A false alert with no boxes is a background image ("nothing to find here"), which is what
teaches a model to stop raising it. One label per alert; relabelling replaces it (the audit
log keeps who changed what).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from central.errors import InvalidInputError, NotFoundError
from central.regulation.scope import Scope, in_scope, scope_filter
from central.regulation.users import User
from central.schema import LockedDb
from central.storage.pg import is_postgres

# The bright-kitchen violations and the person class, as rules in models/canteen.yaml use
# them; a site without a class map of its own labels with these.
DEFAULT_CLASSES = ("person", "no_chef_hat", "no_mask", "smoking", "phone_use", "rodent")
CLASS_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_BOXES = 100
MAX_CLASSES = 80
MAX_QUEUE_PAGE = 200
QUEUE_STATES = ("unlabelled", "labelled", "all")
# The image a label is drawn on: the clean frame when the edge sent one, else the snapshot.
IMAGE_NAMES = ("frame.jpg", "snapshot.jpg")


class LabelBox(BaseModel):
    """One object on the snapshot: its class and corners relative to the image size."""

    model_config = ConfigDict(extra="forbid")

    cls: str = Field(pattern=CLASS_NAME.pattern, description="a class of the site's class map")
    x1: float = Field(ge=0.0, le=1.0)
    y1: float = Field(ge=0.0, le=1.0)
    x2: float = Field(ge=0.0, le=1.0)
    y2: float = Field(ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> LabelBox:
        if not (self.x2 > self.x1 and self.y2 > self.y1):
            raise ValueError("a box needs x2 > x1 and y2 > y1")
        return self


class LabelIn(BaseModel):
    """An inspector's verdict on an alert, with the objects really on its snapshot."""

    model_config = ConfigDict(extra="forbid")

    verdict: Literal["true", "false"] = Field(
        description="true: a real violation; false: a false alarm"
    )
    boxes: list[LabelBox] = Field(default_factory=list, max_length=MAX_BOXES)


class ClassMapIn(BaseModel):
    """A site's class map: the class names, in model index order."""

    model_config = ConfigDict(extra="forbid")

    classes: list[str] = Field(min_length=1, max_length=MAX_CLASSES)

    @model_validator(mode="after")
    def _names(self) -> ClassMapIn:
        for name in self.classes:
            if not CLASS_NAME.match(name):
                raise ValueError(f"class {name!r}: use lower_case_words")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("class names repeat")
        return self


class LabelStore:
    """Labels and class maps in central's database; every call checks the caller's scope."""

    def __init__(self, ldb: LockedDb, clock: Callable[[], float] = time.time) -> None:
        self._ldb = ldb
        self._clock = clock

    def class_map(self, scope: Scope, site_id: str) -> dict[str, Any]:
        """The site's class names (its own, or the default) and whether they are its own."""
        with self._ldb.read() as db:
            self._site(db, scope, site_id)
            rows = list(db.query("select * from site_class_maps where site_id = ?", [site_id]))
        if rows:
            return {"site_id": site_id, "classes": json.loads(rows[0]["classes"]), "own": True}
        return {"site_id": site_id, "classes": list(DEFAULT_CLASSES), "own": False}

    def set_class_map(self, user: User, site_id: str, body: ClassMapIn) -> dict[str, Any]:
        """Replace the site's class map; returns it."""
        with self._ldb.transaction() as db:
            self._site(db, user.scope, site_id)
            db.table("site_class_maps").upsert(
                {
                    "site_id": site_id,
                    "classes": json.dumps(body.classes),
                    "updated_by": user.username,
                    "updated_at": self._clock(),
                },
                pk="site_id",
            )
        return {"site_id": site_id, "classes": body.classes, "own": True}

    def get(self, scope: Scope, alert_id: str) -> dict[str, Any] | None:
        """The label of an alert in scope (None: not labelled yet); NotFoundError outside it."""
        with self._ldb.read() as db:
            self._alert(db, scope, alert_id)
            rows = list(db.query("select * from alert_labels where alert_id = ?", [alert_id]))
        return public_label(dict(rows[0])) if rows else None

    def set_label(
        self, user: User, alert_id: str, body: LabelIn
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Store the verdict of `user` on an alert in scope: (the new label, the one replaced)."""
        with self._ldb.transaction() as db:
            alert = self._alert(db, user.scope, alert_id)
            self.check_classes(db, alert["site_id"], body)
            old = list(db.query("select * from alert_labels where alert_id = ?", [alert_id]))
            row = {
                "alert_id": alert_id,
                "site_id": alert["site_id"],
                "verdict": body.verdict,
                "boxes": json.dumps([b.model_dump() for b in body.boxes]),
                "user_id": user.id,
                "username": user.username,
                "labelled_at": self._clock(),
            }
            db.table("alert_labels").upsert(row, pk="alert_id")
        return public_label(row), public_label(dict(old[0])) if old else None

    def queue(
        self, scope: Scope, state: str = "unlabelled", limit: int = 50, offset: int = 0
    ) -> dict[str, Any]:
        """Alerts in scope with a stored image to label, newest first, each with its image,
        the edge's detections (as boxes to correct) and its label if it has one."""
        if state not in QUEUE_STATES:
            raise InvalidInputError(f"state: one of {', '.join(QUEUE_STATES)}")
        if not 1 <= limit <= MAX_QUEUE_PAGE:
            raise InvalidInputError(f"limit: 1 to {MAX_QUEUE_PAGE}")
        if offset < 0:
            raise InvalidInputError("offset: 0 or more")
        clause, args = scope_filter(scope, "a.org_path")
        labelled = {"unlabelled": "l.alert_id is null", "labelled": "l.alert_id is not null"}
        where = " and ".join([clause, labelled.get(state, "1 = 1")])
        marks = ", ".join("?" for _ in IMAGE_NAMES)
        with self._ldb.read() as db:
            names = "string_agg(m.name, ',')" if is_postgres(db) else "group_concat(m.name)"
            rows = list(
                db.query(
                    "select a.id, a.site_id, a.camera_id, a.kind, a.station, a.start, a.model, "
                    "e.boxes as detections, l.verdict, l.boxes, l.username, l.labelled_at, "
                    f"(select {names} from media m where m.event_id = a.id "
                    f"and m.name in ({marks})) as images "
                    "from alerts a left join alert_labels l on l.alert_id = a.id "
                    "left join events e on e.event_id = a.id "
                    f"where {where} and exists (select 1 from media m where m.event_id = a.id "
                    f"and m.name in ({marks})) "
                    "order by a.start desc, a.id limit ?",
                    [*IMAGE_NAMES, *args, *IMAGE_NAMES, offset + limit + 1],
                )
            )
        from central.models.samples import SampleStore

        items = [_queue_item(dict(r)) for r in rows]
        # Sample frames the edges sent join the same queue, in time order with the alerts.
        items += SampleStore(self._ldb).queue_items(scope, state, offset + limit + 1)
        items.sort(key=lambda i: (-float(i["start"]), i["id"]))
        page = items[offset : offset + limit]
        return {"items": page, "more": len(items) > offset + limit, "state": state}

    @staticmethod
    def _alert(db: Any, scope: Scope, alert_id: str) -> dict[str, Any]:
        rows = list(db.query("select id, site_id, org_path from alerts where id = ?", [alert_id]))
        if not rows or not in_scope(scope, rows[0]["org_path"]):
            raise NotFoundError(f"alert {alert_id} not found")
        return dict(rows[0])

    @staticmethod
    def _site(db: Any, scope: Scope, site_id: str) -> dict[str, Any]:
        rows = list(db.query("select id, org_path from sites where id = ?", [site_id]))
        if not rows or not in_scope(scope, rows[0]["org_path"]):
            raise NotFoundError(f"site {site_id} not found")
        return dict(rows[0])

    @classmethod
    def check_classes(cls, db: Any, site_id: str, body: LabelIn) -> None:
        """InvalidInputError naming each box class not in the site's class map."""
        allowed = cls._classes(db, site_id)
        unknown = sorted({b.cls for b in body.boxes} - set(allowed))
        if unknown:
            raise InvalidInputError(
                f"class {', '.join(unknown)} is not in site {site_id}'s class map "
                f"({', '.join(allowed)})"
            )

    @staticmethod
    def _classes(db: Any, site_id: str) -> list[str]:
        rows = list(db.query("select classes from site_class_maps where site_id = ?", [site_id]))
        return list(json.loads(rows[0]["classes"])) if rows else list(DEFAULT_CLASSES)


def public_label(row: dict[str, Any]) -> dict[str, Any]:
    """A label row as the API returns it (boxes decoded)."""
    return {
        "alert_id": row["alert_id"],
        "site_id": row["site_id"],
        "verdict": row["verdict"],
        "boxes": json.loads(row["boxes"]),
        "username": row["username"],
        "labelled_at": row["labelled_at"],
    }


def detection_boxes(raw: str | None) -> list[dict[str, Any]]:
    """The edge's boxes (x, y, w, h, label, score) as label boxes (cls, x1, y1, x2, y2)."""
    out: list[dict[str, Any]] = []
    for box in json.loads(raw) if raw else []:
        try:
            x, y, w, h = (float(box[k]) for k in ("x", "y", "w", "h"))
        except (KeyError, TypeError, ValueError):
            continue
        out.append(
            {
                "cls": str(box.get("label", "")),
                "x1": max(0.0, x),
                "y1": max(0.0, y),
                "x2": min(1.0, x + w),
                "y2": min(1.0, y + h),
                "score": box.get("score"),
            }
        )
    return out


def _queue_item(row: dict[str, Any]) -> dict[str, Any]:
    names = set((row["images"] or "").split(","))
    image = next(n for n in IMAGE_NAMES if n in names)
    label = None
    if row["verdict"] is not None:
        label = {
            "verdict": row["verdict"],
            "boxes": json.loads(row["boxes"]),
            "username": row["username"],
            "labelled_at": row["labelled_at"],
        }
    return {
        "kind": "alert",
        "id": row["id"],
        "site_id": row["site_id"],
        "camera_id": row["camera_id"],
        "alert_kind": row["kind"],
        "station": row["station"],
        "start": row["start"],
        "model": row["model"],
        "image": f"/api/v1/alerts/{row['id']}/media/{image}",
        "annotated": image != "frame.jpg",
        "label_url": f"/api/v1/alerts/{row['id']}/label",
        "detections": detection_boxes(row["detections"]),
        "label": label,
    }
