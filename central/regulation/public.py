"""The public kitchen view: revocable read-only links to selected canteen cameras, with QR codes."""

from __future__ import annotations

import io
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import segno

from central.errors import InvalidInputError, NotFoundError
from central.regulation.passwords import new_token
from central.regulation.scope import Scope, in_scope, scope_filter
from central.schema import LockedDb

MAX_CAMERAS = 16


@dataclass
class RateLimiter:
    """At most `limit` hits per key in any `window_s` (sliding window); pure, clock passed in."""

    limit: int
    window_s: float
    _hits: dict[str, deque[float]] = field(default_factory=dict)

    def allow(self, key: str, now: float) -> bool:
        """Count a hit for `key` and say whether it is within the limit."""
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        if len(self._hits) > 100_000:
            # Bound memory under a scan from many addresses: forget idle keys.
            for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window_s]:
                del self._hits[k]
        return True


def qr_svg(url: str) -> bytes:
    """An SVG QR code (error correction M) of `url`, for printing on the kitchen door."""
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="svg", scale=8, border=2)
    return out.getvalue()


def qr_png(url: str) -> bytes:
    """A PNG QR code of `url`."""
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="png", scale=8, border=2)
    return out.getvalue()


class PublicLinks:
    """Public links of canteens: created and revoked within a scope, resolved by token."""

    def __init__(self, ldb: LockedDb) -> None:
        self._ldb = ldb

    def create(
        self, scope: Scope, org_id: int, cameras: list[str], label: str, user_id: int
    ) -> dict[str, Any]:
        """Publish cameras (``site/camera``) of a canteen; returns the link with its token."""
        if not cameras or len(cameras) > MAX_CAMERAS:
            raise InvalidInputError(f"choose 1 to {MAX_CAMERAS} cameras")
        with self._ldb.transaction() as db:
            org = list(db.query("select * from orgs where id = ?", [org_id]))
            if not org or not in_scope(scope, org[0]["org_path"]):
                raise NotFoundError(f"organisation {org_id} not found")
            if org[0]["level"] != "enterprise" or org[0]["enterprise_type"] != "canteen":
                raise InvalidInputError("only a canteen publishes a public kitchen view")
            path = org[0]["org_path"]
            for ref in cameras:
                site, _, cam = ref.partition("/")
                found = list(
                    db.query(
                        "select org_path from cameras where site_id = ? and camera_id = ?",
                        [site, cam],
                    )
                )
                if not found or found[0]["org_path"] != path:
                    raise InvalidInputError(f"camera {ref!r} is not a camera of this canteen")
            row = {
                "token": new_token(),
                "org_id": org_id,
                "org_path": path,
                "cameras": json.dumps(sorted(set(cameras))),
                "label": label,
                "created_by": user_id,
                "created_at": time.time(),
            }
            pk = db.table("public_links").insert(row).last_pk
        return self.get(scope, int(str(pk)))

    def get(self, scope: Scope, link_id: int) -> dict[str, Any]:
        """One link in scope (with its token: staff print it as a QR code)."""
        with self._ldb.lock:
            rows = list(self._ldb.db.query("select * from public_links where id = ?", [link_id]))
        if not rows or not in_scope(scope, rows[0]["org_path"]):
            raise NotFoundError(f"public link {link_id} not found")
        return _link(dict(rows[0]))

    def list_links(self, scope: Scope) -> list[dict[str, Any]]:
        """Links in scope, revoked ones included."""
        where, args = scope_filter(scope)
        with self._ldb.lock:
            rows = self._ldb.db.query(f"select * from public_links where {where} order by id", args)
            return [_link(dict(r)) for r in rows]

    def revoke(self, scope: Scope, link_id: int) -> dict[str, Any]:
        """Revoke a link at once: its token stops working."""
        self.get(scope, link_id)
        with self._ldb.transaction() as db:
            db.execute(
                "update public_links set revoked_at = ? where id = ? and revoked_at is null",
                [time.time(), link_id],
            )
        return self.get(scope, link_id)

    def resolve(self, token: str) -> dict[str, Any]:
        """What a public visitor may see: the canteen's public info and its published cameras."""
        with self._ldb.lock:
            db = self._ldb.db
            rows = list(
                db.query(
                    "select l.cameras, o.name, o.address, o.licence_no, o.public_info "
                    "from public_links l join orgs o on o.id = l.org_id "
                    "where l.token = ? and l.revoked_at is null",
                    [token],
                )
            )
            if not rows:
                raise NotFoundError("this public link does not exist or was revoked")
            refs = json.loads(rows[0]["cameras"])
            cams = []
            for ref in refs:
                site, _, cam = ref.partition("/")
                found = list(
                    db.query(
                        "select c.name, c.station, s.state from cameras c left join "
                        "camera_status s on s.site = c.site_id and s.camera = c.camera_id "
                        "where c.site_id = ? and c.camera_id = ?",
                        [site, cam],
                    )
                )
                if found:
                    row = found[0]
                    cams.append(
                        {
                            "ref": ref,
                            "name": row["name"],
                            "station": row["station"],
                            "online": row["state"] == "online",
                        }
                    )
        info = rows[0]
        return {
            "canteen": {
                "name": info["name"],
                "address": info["address"] or "",
                "licence_no": info["licence_no"] or "",
                "public_info": info["public_info"] or "",
            },
            "cameras": cams,
        }


def _link(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "cameras": json.loads(row["cameras"]), "active": row["revoked_at"] is None}
