"""The public kitchen view: revocable read-only links to selected canteen cameras, with QR codes."""

from __future__ import annotations

import hmac
import io
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import segno

from central.errors import InvalidInputError, NotFoundError
from central.regulation.inspections import latest_public
from central.regulation.passwords import new_token, token_digest
from central.regulation.scope import Scope, in_scope, scope_filter
from central.schema import LockedDb

MAX_CAMERAS = 16
DEFAULT_MAX_VIEWERS = 20  # video connections one link carries at once, unless it says
MAX_VIEWERS = 500
_LIVE = "l.revoked_at is null and (l.expires_at is null or l.expires_at > ?)"


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

    def now(self) -> float:
        """The clock `allow` is given (monotonic: one process)."""
        return time.monotonic()

    async def allow_now(self, key: str) -> bool:
        """`allow` at this moment (in memory: at once, on the event loop)."""
        return self.allow(key, self.now())


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
        self,
        scope: Scope,
        org_id: int,
        cameras: list[str],
        label: str,
        user_id: int,
        *,
        expires_at: float | None = None,
        max_viewers: int | None = None,
    ) -> dict[str, Any]:
        """Publish cameras (``site/camera``) of a canteen; returns the link with its token.

        The token is returned this once: the database keeps only its digest (token_digest),
        so a backup or a replica of it opens no public view. `expires_at` (UTC seconds) ends
        the link by itself; `max_viewers` caps the video connections it carries at once
        (DEFAULT_MAX_VIEWERS if not given).
        """
        if not cameras or len(cameras) > MAX_CAMERAS:
            raise InvalidInputError(f"choose 1 to {MAX_CAMERAS} cameras")
        if expires_at is not None and expires_at <= time.time():
            raise InvalidInputError("expires_at must lie in the future")
        if max_viewers is not None and not 1 <= max_viewers <= MAX_VIEWERS:
            raise InvalidInputError(f"max_viewers must be 1 to {MAX_VIEWERS}")
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
            token = new_token()
            row = {
                "token_hash": token_digest(token),
                "org_id": org_id,
                "org_path": path,
                "cameras": json.dumps(sorted(set(cameras))),
                "label": label,
                "created_by": user_id,
                "created_at": time.time(),
                "expires_at": expires_at,
                "max_viewers": max_viewers or DEFAULT_MAX_VIEWERS,
            }
            pk = db.table("public_links").insert(row).last_pk
        return {**self.get(scope, int(str(pk))), "token": token}

    def get(self, scope: Scope, link_id: int) -> dict[str, Any]:
        """One link in scope (without its token, which only its creator was shown)."""
        with self._ldb.lock:
            rows = list(self._ldb.db.query("select * from public_links where id = ?", [link_id]))
        if not rows or not in_scope(scope, rows[0]["org_path"]):
            raise NotFoundError(f"public link {link_id} not found")
        return _link(dict(rows[0]))

    def with_token(self, scope: Scope, link_id: int, token: str) -> dict[str, Any]:
        """One link in scope whose token is `token` (the QR code and the poster print it).

        NotFoundError if the link is out of scope or `token` is not its token;
        InvalidInputError if no token is given (a link in scope: its staff may ask).
        """
        with self._ldb.lock:
            rows = list(self._ldb.db.query("select * from public_links where id = ?", [link_id]))
        if not rows or not in_scope(scope, rows[0]["org_path"]):
            raise NotFoundError(f"public link {link_id} not found")
        if not token:
            raise InvalidInputError(
                "give the link's token (?token=): it is shown once, when the link is made, "
                "and central keeps only its digest"
            )
        if not hmac.compare_digest(rows[0]["token_hash"], token_digest(token)):
            raise NotFoundError(f"public link {link_id} with this token not found")
        return {**_link(dict(rows[0])), "token": token}

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

    def link(self, token: str) -> dict[str, Any]:
        """The live link of `token` (id, org, published cameras still in that org, cap, expiry).

        NotFoundError if the token is unknown, revoked or expired: the caller cannot tell which.
        """
        with self._ldb.read() as db:
            row = db.execute(
                "select l.id, l.org_id, l.org_path, l.cameras, l.max_viewers, l.expires_at "
                f"from public_links l where l.token_hash = ? and {_LIVE}",
                [token_digest(token), time.time()],
            ).fetchone()
            if row is None:
                raise NotFoundError("this public link does not exist or was revoked")
            published = []
            for ref in json.loads(row[3]):
                site, _, cam = ref.partition("/")
                found = db.execute(
                    "select 1 from cameras where site_id = ? and camera_id = ? and org_path = ?",
                    [site, cam, row[2]],
                ).fetchone()
                if found is not None:  # a camera moved to another organisation is not shown
                    published.append(ref)
        return {
            "id": row[0],
            "org_id": row[1],
            "org_path": row[2],
            "cameras": published,
            "max_viewers": row[4] or DEFAULT_MAX_VIEWERS,
            "expires_at": row[5],
        }

    def live_ids(self, link_ids: list[int]) -> set[int]:
        """Those of `link_ids` that are neither revoked nor expired now."""
        if not link_ids:
            return set()
        marks = ",".join("?" for _ in link_ids)
        with self._ldb.read() as db:
            rows = db.execute(
                f"select l.id from public_links l where l.id in ({marks}) and {_LIVE}",
                [*link_ids, time.time()],
            ).fetchall()
        return {int(r[0]) for r in rows}

    def resolve(self, token: str) -> dict[str, Any]:
        """What a public visitor may see: the canteen's public info, its latest inspection
        and its published cameras, nothing else."""
        link = self.link(token)
        with self._ldb.read() as db:
            info = db.execute(
                "select name, address, licence_no, public_info from orgs where id = ?",
                [link["org_id"]],
            ).fetchone()
            cams = []
            for ref in link["cameras"]:
                site, _, cam = ref.partition("/")
                row = db.execute(
                    "select c.name, c.station, s.state from cameras c left join "
                    "camera_status s on s.site = c.site_id and s.camera = c.camera_id "
                    "where c.site_id = ? and c.camera_id = ?",
                    [site, cam],
                ).fetchone()
                if row is not None:
                    cams.append(
                        {
                            "ref": ref,
                            "name": row[0] or cam,
                            "station": row[1],
                            "online": row[2] == "online",
                        }
                    )
            inspection = latest_public(db, link["org_id"])
        return {
            "canteen": {
                "name": info[0],
                "address": info[1] or "",
                "licence_no": info[2] or "",
                "public_info": info[3] or "",
            },
            "inspection": inspection,
            "cameras": cams,
            "expires_at": link["expires_at"],
        }


def _link(row: dict[str, Any]) -> dict[str, Any]:
    expired = row.get("expires_at") is not None and row["expires_at"] <= time.time()
    row.pop("token_hash", None)  # the digest stays in the database: it opens nothing
    return {
        **row,
        "cameras": json.loads(row["cameras"]),
        "max_viewers": row.get("max_viewers") or DEFAULT_MAX_VIEWERS,
        "expired": expired,
        "active": row["revoked_at"] is None and not expired,
    }
