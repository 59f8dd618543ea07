"""Transfer into the archive: what to ask a site for, and taking a segment in, verified.

The edge asks what the archive still wants (`wanted`): anchored segments its policy covers
that the archive neither holds nor refused, oldest first, so an outage is caught up in
order. It sends each one with `X-Offset` (bytes the archive already holds of it, from a
transfer that was cut or paused); the bytes go into `<file>.part`. Once the part is whole it
is hashed: the anchored SHA-256 makes it a stored segment; another hash is refused, the
part deleted and a `footage_tampered` finding raised. A segment stored already is a no-op
(idempotent per segment).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central.archive.policy import SitePolicy, wants
from central.archive.settings import ArchiveConfig
from central.archive.store import ArchiveStore, Stored
from central.integrity.anchors import in_camera_folder
from central.integrity.findings import Finding, report
from central.storage.db import CentralDatabase
from fsv_common.files import put_in_place
from fsv_contract.lanes import split_lane

_SAFE_PATH = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*){0,7}$")
CHUNK = 1 << 20


class ArchiveError(Exception):
    """A transfer the archive does not take; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int, have: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.have = have


@dataclass(frozen=True)
class Anchored:
    """An anchored segment as central's chain holds it."""

    camera: str
    path: str
    start: float
    end: float
    bytes: int
    sha256: str


def safe_path(path: str) -> str:
    """A segment path the archive may use under its folder (relative, no `..`)."""
    if not _SAFE_PATH.match(path) or ".." in path.split("/"):
        raise ArchiveError(f"segment path {path!r} is not a recording path", 400)
    return path


class Archive:
    """The archive's files and index beside central's anchored chain."""

    def __init__(
        self, config: ArchiveConfig, root: Path, store: ArchiveStore, central: CentralDatabase,
        zone: str,
    ) -> None:  # fmt: skip
        self.config = config
        self.root = root
        self.store = store
        self.central = central
        self.zone = zone

    def file(self, site: str, path: str) -> Path:
        """Where a stored segment lives."""
        return self.root / site / safe_path(path)

    def _part(self, site: str, path: str) -> Path:
        return self.file(site, path).with_name(self.file(site, path).name + ".part")

    def have_bytes(self, site: str, path: str) -> int:
        """Bytes held of an unfinished transfer."""
        try:
            return self._part(site, path).stat().st_size
        except OSError:
            return 0

    def policy(self, site: str) -> SitePolicy:
        """The site's policy, or the configured default."""
        return self.store.policy(site) or SitePolicy(policy=self.config.default_policy)

    # --- what to ask for -------------------------------------------------------------------

    def wanted(self, site: str, limit: int, now: float | None = None) -> list[dict[str, Any]]:
        """Segments of `site` the archive still wants, oldest first, with the bytes held."""
        policy = self.policy(site)
        if policy.policy == "evidence":
            return []
        since = (now or time.time()) - self.config.retention_days * 86400
        known = self.store.known_paths(site)
        out: list[dict[str, Any]] = []
        with self.central.read() as db:
            stations = {
                r[0]: r[1]
                for r in db.execute(
                    "select camera_id, station from cameras where site_id = ?", [site]
                ).fetchall()
            }
            rows = db.execute(
                'select camera, path, start, "end", bytes, sha256 from anchored_segments '
                'where site = ? and removed_at is null and "end" > ? order by start',
                [site, since],
            )
            for camera, path, start, end, size, sha in rows:
                if (camera, path) in known:
                    continue
                base, stream = split_lane(camera)
                if not wants(policy, stations.get(base), start, end, self.zone, stream):
                    continue
                out.append({"camera": camera, "path": path, "start": start, "end": end,
                            "bytes": size, "sha256": sha,
                            "have_bytes": self.have_bytes(site, path)})  # fmt: skip
                if len(out) >= limit:
                    break
        return out

    def backlog(self, site: str) -> int:
        """How many segments the archive still wants of a site (up to 100,000)."""
        return len(self.wanted(site, 100_000))

    # --- taking a segment in ---------------------------------------------------------------

    def anchored(self, site: str, camera: str, path: str) -> Anchored:
        """The anchored facts of a segment; ArchiveError 409 while central has none."""
        with self.central.read() as db:
            row = db.execute(
                'select camera, path, start, "end", bytes, sha256 from anchored_segments '
                "where site = ? and camera = ? and path = ?",
                [site, camera, safe_path(path)],
            ).fetchone()
        if row is None:
            raise ArchiveError("that segment is not anchored at central (yet); send it later", 409)
        return Anchored(*row)

    def begin(self, site: str, camera: str, path: str, sha: str, offset: int) -> Anchored | None:
        """Check a transfer before its body; None if the segment is stored already."""
        if not in_camera_folder(camera, path):
            # Files are kept by path: a segment anchored under another camera's folder (by
            # an older central) must not replace that camera's archived file.
            raise ArchiveError(f"segment path {path!r} is not under the camera's folder", 400)
        seg = self.anchored(site, camera, path)
        if seg.sha256 != sha:
            self._refuse(site, seg, f"sent with SHA-256 {sha[:12]}, anchored {seg.sha256[:12]}")
            raise ArchiveError("the SHA-256 differs from the anchored chain: refused", 422)
        if seg.bytes > self.config.max_segment_bytes:
            raise ArchiveError(f"{seg.bytes} bytes is over the archive's segment limit", 413)
        if self.store.stored(site, camera, seg.path) is not None:
            return None
        have = self.have_bytes(site, path)
        if offset != have:
            raise ArchiveError(f"the archive holds {have} bytes of it; resume there", 416, have)
        self.file(site, path).parent.mkdir(parents=True, exist_ok=True)
        return seg

    def append(self, site: str, seg: Anchored, block: bytes) -> int:
        """Add a block to the part file; ArchiveError 413 past the anchored size."""
        part = self._part(site, seg.path)
        with part.open("ab") as f:
            if f.tell() + len(block) > seg.bytes:
                raise ArchiveError("more bytes than the anchored segment has", 413)
            f.write(block)
            return f.tell()

    def finish(self, site: str, seg: Anchored) -> bool:
        """Verify a whole part and store it; False while bytes are missing.

        ArchiveError 422 (refused, flagged) when the bytes hash to another SHA-256.
        """
        part = self._part(site, seg.path)
        size = part.stat().st_size if part.exists() else 0
        if size < seg.bytes:
            return False
        digest = hashlib.sha256()
        with part.open("rb") as f:
            while block := f.read(CHUNK):
                digest.update(block)
        if digest.hexdigest() != seg.sha256:
            part.unlink(missing_ok=True)
            self._refuse(site, seg, f"bytes hash to {digest.hexdigest()[:12]}, anchored "
                                    f"{seg.sha256[:12]}")  # fmt: skip
            raise ArchiveError("the bytes do not match the anchored SHA-256: refused", 422)
        put_in_place(part, self.file(site, seg.path))
        self.store.add(
            Stored(site, seg.camera, seg.path, seg.start, seg.end, seg.bytes, seg.sha256)
        )
        return True

    def _refuse(self, site: str, seg: Anchored, reason: str) -> None:
        self.store.refuse(site, seg.camera, seg.path, reason)
        problem = f"archive transfer refused: {reason}"
        with self.central.transaction() as db:
            report(db, [Finding(site, seg.camera, seg.path, problem)], "archive", time.time())
