"""The organisation tree (province → city → county → enterprise), edge sites and cameras."""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Collection, Sequence
from typing import Any

from central.errors import ConflictError, InvalidInputError, NotFoundError
from central.regulation.capability import camera_detection, camera_sub_lane, heartbeat_of
from central.regulation.scope import Scope, in_scope, scope_filter
from central.schema import LockedDb
from central.storage.pg import tables_with_column

log = logging.getLogger(__name__)

LEVELS = ("province", "city", "county", "enterprise")
ENTERPRISE_TYPES = ("slaughterhouse", "canteen")
SITE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_CAMERA_SQL = "select * from cameras where site_id = ? and camera_id = ?"
# The most cameras a site lists from its own reports: as many as its heartbeat can report.
MAX_SITE_CAMERAS = 1024
ORG_FIELDS = ("name", "enterprise_type", "address", "licence_no", "contact", "phone", "public_info")


def parent_level(level: str) -> str | None:
    """The level an organisation of `level` must hang under (None for a province)."""
    if level not in LEVELS:
        raise InvalidInputError(f"unknown level {level!r} (one of {', '.join(LEVELS)})")
    i = LEVELS.index(level)
    return LEVELS[i - 1] if i else None


class OrgStore:
    """Organisations, sites and cameras in central's database, always read through a scope."""

    def __init__(self, ldb: LockedDb) -> None:
        self._ldb = ldb

    # --- organisations ----------------------------------------------------------------------

    def create_org(
        self, scope: Scope, parent_id: int | None, level: str, **info: Any
    ) -> dict[str, Any]:
        """Create an organisation under `parent_id` (which must be in `scope`)."""
        want_parent = parent_level(level)
        info = {k: v for k, v in info.items() if k in ORG_FIELDS}
        if not str(info.get("name") or "").strip():
            raise InvalidInputError("name: an organisation needs a name")
        if level == "enterprise" and info.get("enterprise_type") not in ENTERPRISE_TYPES:
            raise InvalidInputError(
                f"enterprise_type: must be one of {', '.join(ENTERPRISE_TYPES)}"
            )
        if level != "enterprise":
            info["enterprise_type"] = None
        with self._ldb.transaction() as db:
            if want_parent is None:
                if parent_id is not None:
                    raise InvalidInputError("a province has no parent")
                if scope.root is not None:
                    raise NotFoundError("only an administrator creates provinces")
                parent_path = "/"
            else:
                if parent_id is None:
                    raise InvalidInputError(f"a {level} needs a parent {want_parent}")
                parent = self._get(db, scope, parent_id)
                if parent["level"] != want_parent:
                    raise InvalidInputError(
                        f"a {level} hangs under a {want_parent}, not a {parent['level']}"
                    )
                parent_path = parent["org_path"]
            row = {
                **info,
                "parent_id": parent_id,
                "level": level,
                "org_path": f"{parent_path}pending-{time.time_ns()}/",
                "created_at": time.time(),
            }
            new_id = db.table("orgs").insert(row).last_pk
            db.execute(
                "update orgs set org_path = ? where id = ?", [f"{parent_path}{new_id}/", new_id]
            )
            return self._get(db, Scope.everything(), int(str(new_id)))

    def get_org(self, scope: Scope, org_id: int) -> dict[str, Any]:
        """One organisation; NotFoundError if it does not exist or lies outside `scope`."""
        with self._ldb.lock:
            return self._get(self._ldb.db, scope, org_id)

    @staticmethod
    def _get(db: Any, scope: Scope, org_id: int) -> dict[str, Any]:
        rows = list(db.query("select * from orgs where id = ?", [org_id]))
        if not rows or not in_scope(scope, rows[0]["org_path"]):
            raise NotFoundError(f"organisation {org_id} not found")
        return dict(rows[0])

    def list_orgs(
        self, scope: Scope, *, under: int | None = None, level: str | None = None
    ) -> list[dict[str, Any]]:
        """Organisations in scope, optionally only below `under` and of one `level`."""
        where, params = scope_filter(scope)
        clauses, args = [where], list[Any](params)
        if under is not None:
            base = self.get_org(scope, under)
            sub, sub_params = scope_filter(Scope(base["org_path"]))
            clauses.append(sub)
            args += sub_params
        if level is not None:
            clauses.append("level = ?")
            args.append(level)
        sql = f"select * from orgs where {' and '.join(clauses)} order by org_path"
        with self._ldb.lock:
            return [dict(r) for r in self._ldb.db.query(sql, args)]

    def update_org(self, scope: Scope, org_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        """Change an organisation's descriptive fields (never its place in the tree)."""
        bad = set(changes) - set(ORG_FIELDS)
        if bad:
            raise InvalidInputError(f"cannot change {', '.join(sorted(bad))}")
        with self._ldb.transaction() as db:
            org = self._get(db, scope, org_id)
            if "enterprise_type" in changes and (
                org["level"] != "enterprise" or changes["enterprise_type"] not in ENTERPRISE_TYPES
            ):
                raise InvalidInputError("enterprise_type applies to enterprises only")
            if changes:
                db.table("orgs").update(org_id, changes)
            return self._get(db, scope, org_id)

    def move_org(self, scope: Scope, org_id: int, parent_id: int) -> dict[str, Any]:
        """Hang an organisation and its whole subtree under another parent of the same level.

        Both the organisation and the new parent must lie in `scope`. Every row that carries
        the subtree's paths (organisations, sites, cameras, users, alerts, links...) follows in
        one transaction; the append-only audit log keeps the paths the entries were written
        under. Returns the moved organisation with `old_path`.
        """
        with self._ldb.transaction() as db:
            org = self._get(db, scope, org_id)
            want = parent_level(org["level"])
            if want is None:
                raise InvalidInputError("parent_id: a province has no parent")
            try:
                parent = self._get(db, scope, parent_id)
            except NotFoundError:
                raise NotFoundError(f"organisation {parent_id} not found") from None
            if parent["level"] != want:
                raise InvalidInputError(
                    f"parent_id: a {org['level']} hangs under a {want}, not a {parent['level']}"
                )
            old = str(org["org_path"])
            new = f"{parent['org_path']}{org_id}/"
            if new != old:
                where, args = scope_filter(Scope(old))
                # The audit log keeps the path an entry was made under; the daily alert
                # rollup follows its alerts through their triggers (moving it as well would
                # count them twice).
                kept = ("audit_log", "alert_days")
                tables = [t for t in tables_with_column(db, "org_path") if t not in kept]
                for table in tables:
                    db.execute(
                        f"update {table} set org_path = ? || substr(org_path, ?) where {where}",
                        [new, len(old) + 1, *args],
                    )
                db.execute("update orgs set parent_id = ? where id = ?", [parent_id, org_id])
            return {**self._get(db, Scope.everything(), org_id), "old_path": old}

    def tree(self, scope: Scope) -> list[dict[str, Any]]:
        """The organisations in scope as nested dicts with a `children` list each."""
        nodes = {o["id"]: {**o, "children": []} for o in self.list_orgs(scope)}
        roots: list[dict[str, Any]] = []
        for node in nodes.values():
            parent = nodes.get(node["parent_id"])
            (parent["children"] if parent else roots).append(node)
        return roots

    # --- sites ------------------------------------------------------------------------------

    def create_site(self, scope: Scope, org_id: int, site_id: str, name: str) -> dict[str, Any]:
        """Register an edge site (one NVR box) of an enterprise."""
        if not SITE_ID.match(site_id):
            raise InvalidInputError(
                "site_id: lower-case letters, digits, '_' and '-', at most 63 characters"
            )
        with self._ldb.transaction() as db:
            org = self._get(db, scope, org_id)
            if org["level"] != "enterprise":
                raise InvalidInputError("org_id: a site belongs to an enterprise")
            try:
                db.table("sites").insert(
                    {
                        "id": site_id,
                        "org_id": org_id,
                        "org_path": org["org_path"],
                        "name": name or site_id,
                        "mqtt_username": site_id,
                        "created_at": time.time(),
                    }
                )
            except sqlite3.IntegrityError as e:
                raise ConflictError(f"site_id: site {site_id!r} already exists") from e
            # Alerts that arrived before the site was registered belonged to nobody (admins
            # only); they now join the enterprise's inbox.
            db.execute(
                "update alerts set org_path = ? where site_id = ? and org_path = ?",
                [org["org_path"], site_id, "/"],
            )
        return self.get_site(scope, site_id)

    def get_site(self, scope: Scope, site_id: str) -> dict[str, Any]:
        """One site; NotFoundError outside `scope`."""
        with self._ldb.lock:
            rows = list(self._ldb.db.query("select * from sites where id = ?", [site_id]))
        if not rows or not in_scope(scope, rows[0]["org_path"]):
            raise NotFoundError(f"site {site_id!r} not found")
        return dict(rows[0])

    def list_sites(self, scope: Scope, org_id: int | None = None) -> list[dict[str, Any]]:
        """Sites in scope, optionally of one organisation subtree."""
        where, params = scope_filter(scope, "t.org_path")
        args: list[Any] = list(params)
        if org_id is not None:
            root = self.get_org(scope, org_id)["org_path"]
            sub, sub_params = scope_filter(Scope(root), "t.org_path")
            where += f" and {sub}"
            args += sub_params
        sql = (
            "select t.*, a.state as agent_state, a.last_heartbeat_at from sites t "
            f"left join agent_status a on a.site = t.id where {where} order by t.id"
        )
        with self._ldb.lock:
            return [dict(r) for r in self._ldb.db.query(sql, args)]

    def site_org_path(self, site_id: str) -> str | None:
        """The organisation path of a site, None for a site central does not know."""
        with self._ldb.lock:
            rows = list(self._ldb.db.query("select org_path from sites where id = ?", [site_id]))
        return str(rows[0]["org_path"]) if rows else None

    # --- cameras ----------------------------------------------------------------------------

    def upsert_camera(
        self, site_id: str, camera_id: str, *, name: str | None = None, station: str | None = None
    ) -> None:
        """The site reports a camera: create it, or record the site's name/station.

        The site's values are kept as `reported_name`/`reported_station`; they become the
        camera's name and station only where no regulator has set those (`set_camera_labels`):
        the edge box belongs to the supervised enterprise and must not undo a regulator's edit.
        Unknown sites are ignored.
        """
        org_path = self.site_org_path(site_id)
        if org_path is None or not camera_id:
            return
        with self._ldb.transaction() as db:
            upsert_cameras_in(db, [(site_id, camera_id, name, station)], {site_id: org_path})

    def set_camera_labels(
        self, site_id: str, camera_id: str, *, name: str | None = None, station: str | None = None
    ) -> None:
        """A regulator names a camera or sets its station; the site's reports no longer do."""
        changes: dict[str, Any] = {}
        for key, value in (("name", name), ("station", station)):
            if value:
                changes[key] = value
                changes[f"{key}_by_regulator"] = 1
        if not changes:
            return
        with self._ldb.transaction() as db:
            db.table("cameras").update((site_id, camera_id), changes)

    def list_cameras(self, scope: Scope, site_id: str | None = None) -> list[dict[str, Any]]:
        """Cameras in scope, optionally of one site."""
        where, args = scope_filter(scope, "c.org_path")
        if site_id is not None:
            self.get_site(scope, site_id)
            where += " and c.site_id = ?"
            args = [*args, site_id]
        sql = (
            "select c.*, s.state, s.since as state_since, s.reason as state_reason "
            "from cameras c left join camera_status s on s.site = c.site_id "
            f"and s.camera = c.camera_id where {where} order by c.site_id, c.camera_id"
        )
        with self._ldb.lock:
            cameras = [dict(r) for r in self._ldb.db.query(sql, args)]
            sites = sorted({c["site_id"] for c in cameras})
            beats: dict[str, str | None] = {}
            for i in range(0, len(sites), 500):
                chunk = sites[i : i + 500]
                marks = ", ".join("?" for _ in chunk)
                rows = self._ldb.db.query(
                    f"select site, heartbeat from agent_status where site in ({marks})", chunk
                )
                beats.update({r["site"]: r["heartbeat"] for r in rows})
        # Each camera's sub lane recorder (sub_lane), from its site's last heartbeat.
        decoded = {site: heartbeat_of(text) for site, text in beats.items()}
        for cam in cameras:
            cam["sub_lane"] = camera_sub_lane(decoded.get(cam["site_id"], {}), cam["camera_id"])
        return cameras

    def get_camera(self, scope: Scope, site_id: str, camera_id: str) -> dict[str, Any]:
        """One camera, with what its detection rules can see (`detection`) and its sub lane
        recorder (`sub_lane`), both from the site's last heartbeat (None if not reported);
        NotFoundError outside `scope`."""
        with self._ldb.lock:
            rows = list(
                self._ldb.db.query(
                    "select c.*, a.heartbeat as _heartbeat from cameras c "
                    "left join agent_status a on a.site = c.site_id "
                    "where c.site_id = ? and c.camera_id = ?",
                    [site_id, camera_id],
                )
            )
        if not rows or not in_scope(scope, rows[0]["org_path"]):
            raise NotFoundError(f"camera {site_id}/{camera_id} not found")
        camera = dict(rows[0])
        beat = camera.pop("_heartbeat")
        camera["detection"] = camera_detection(beat, camera_id)
        camera["sub_lane"] = camera_sub_lane(heartbeat_of(beat), camera_id)
        return camera


# (site id, camera id, name the site reports or None, station the site reports or None)
ReportedCamera = tuple[str, str, str | None, str | None]


def site_org_paths(db: Any, site_ids: Collection[str]) -> dict[str, str]:
    """The organisation path of each known site among `site_ids` (one query)."""
    ids = sorted(set(site_ids))
    if not ids:
        return {}
    rows = db.execute(
        f"select id, org_path from sites where id in ({', '.join('?' * len(ids))})", ids
    ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def upsert_cameras_in(
    db: Any, cameras: Sequence[ReportedCamera], org_paths: dict[str, str]
) -> None:
    """`OrgStore.upsert_camera` for several reports, in order, inside the caller's
    transaction: one read for all the cameras; a camera whose row would not change is
    not written. Sites missing from `org_paths` (unknown) are ignored; a site listing
    MAX_SITE_CAMERAS already gets no new camera (logged, counted as `cameras_refused`)."""
    wanted = sorted({(s, c) for s, c, _n, _st in cameras if c and s in org_paths})
    if not wanted:
        return
    known = _known_cameras(db, wanted)
    room = _camera_room(db, {s for s, c in wanted if (s, c) not in known})
    refused: set[tuple[str, str]] = set()
    for site_id, camera_id, name, station in cameras:
        org_path = org_paths.get(site_id)
        if org_path is None or not camera_id:
            continue
        cam = known.get((site_id, camera_id))
        if cam is None and room[site_id] <= 0:
            refused.add((site_id, camera_id))
            continue
        if cam is None:
            room[site_id] -= 1
            row = {
                "site_id": site_id,
                "camera_id": camera_id,
                "org_path": org_path,
                "name": name or camera_id,
                "station": station or "unknown",
                "reported_name": name,
                "reported_station": station,
                "name_by_regulator": 0,
                "station_by_regulator": 0,
                "created_at": time.time(),
            }
            db.table("cameras").insert(row)
            known[(site_id, camera_id)] = row
            continue
        changes: dict[str, Any] = {}
        for key, value in (("name", name), ("station", station)):
            if not value:
                continue
            changes[f"reported_{key}"] = value
            if not cam[f"{key}_by_regulator"]:
                changes[key] = value
        changes = {k: v for k, v in changes.items() if cam.get(k) != v}
        if changes:
            db.table("cameras").update((site_id, camera_id), changes)
            cam.update(changes)
    if refused:
        _refuse_cameras(db, refused)


def _known_cameras(
    db: Any, wanted: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The rows of the (site, camera) pairs already listed."""
    known: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(wanted), 200):
        chunk = wanted[start : start + 200]
        pairs = " or ".join("(site_id = ? and camera_id = ?)" for _ in chunk)
        args = [v for pair in chunk for v in pair]
        for r in db.query(f"select * from cameras where {pairs}", args):
            known[(r["site_id"], r["camera_id"])] = dict(r)
    return known


def _camera_room(db: Any, sites: Collection[str]) -> dict[str, int]:
    """How many more cameras each of `sites` may list (MAX_SITE_CAMERAS in all)."""
    room: dict[str, int] = {}
    for site in sites:
        count = db.execute("select count(*) from cameras where site_id = ?", [site]).fetchone()
        room[site] = MAX_SITE_CAMERAS - int(count[0])
    return room


def _refuse_cameras(db: Any, refused: set[tuple[str, str]]) -> None:
    """Log and count cameras not listed because their site lists MAX_SITE_CAMERAS already."""
    sites = sorted({site for site, _camera in refused})
    log.warning("not listing %d new camera(s) of site(s) %s: a site lists at most %d cameras",
                len(refused), ", ".join(sites)[:200], MAX_SITE_CAMERAS)  # fmt: skip
    db.execute(
        "insert into ingest_counters (name, value) values ('cameras_refused', ?) "
        "on conflict (name) do update set value = ingest_counters.value + excluded.value",
        [len(refused)],
    )
