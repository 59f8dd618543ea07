"""Clip exports: asked of the edge by command, received over the uplink, checked, signed, kept.

With the edge away, a clip the city archive holds is cut at central instead (source
`archive`, central.archive.export), checked and signed the same way.

Central never trusts the upload blindly: the received file must have the size and SHA-256
the edge's manifest states and the manifest's chain must hold, before central signs it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from aiohttp import WSMsgType, web

from central.archive.export import ArchiveExportError
from central.errors import NotFoundError
from central.integrity.clip_check import DIFFERS, anchor_mismatches
from central.integrity.findings import Finding, report
from central.regulation.scope import Scope, in_scope, scope_filter
from central.storage.db import CentralDatabase, apply_migrations
from central.video.hub import Sender, new_token
from central.video.signing import ManifestSigner
from fsv_common.digest import file_sha256
from fsv_common.files import put_in_place, write_whole
from fsv_contract.errors import InvalidPayload
from fsv_contract.lanes import Lane, lane_id
from fsv_contract.video import (
    VERB_EXPORT,
    ClipManifest,
    End,
    ExportArgs,
    FrameKind,
    chain_problems,
    parse_control,
    unpack_frame,
)

log = logging.getLogger(__name__)

migrations = sqlite_utils.Migrations("central.video")
MAX_EXPORT_BYTES = 4 << 30
CONNECT_TIMEOUT_S = 60.0  # the edge must start uploading this soon after the command


@migrations()
def m001_exports(db: sqlite_utils.Database) -> None:
    """Exported clips and who asked for them."""
    db.table("video_exports").create(
        {
            "id": str,
            "site_id": str,
            "camera_id": str,
            "org_path": str,
            "start": float,
            "end": float,
            "user_id": int,
            "username": str,
            "status": str,
            "error": str,
            "request_id": str,
            "bytes": int,
            "sha256": str,
            "clip_start": float,
            "clip_end": float,
            "created_at": float,
            "finished_at": float,
        },
        pk="id",
        not_null={"site_id", "camera_id", "org_path", "start", "end", "status", "created_at"},
    )
    db.table("video_exports").create_index(["org_path", "created_at"])


@migrations()
def m002_export_source(db: sqlite_utils.Database) -> None:
    """Where a clip was cut (`edge`, or `archive` with the edge away) and from which stream."""
    db.table("video_exports").add_column("source", str)
    db.table("video_exports").add_column("stream", str)


class ExportStore:
    """Export jobs in central's database and their files under `folder`."""

    def __init__(
        self, database: CentralDatabase, folder: Path, signer: ManifestSigner, send: Sender
    ) -> None:
        self.database = database
        self.folder = folder
        self.signer = signer
        self._send = send
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (export id, deadline)
        self.token_prefix = ""  # `{node_id}-` with several nodes (see hub.new_token)
        folder.mkdir(parents=True, exist_ok=True)
        with database.lock:
            apply_migrations(migrations, database.db)

    def clip_path(self, export_id: str) -> Path:
        """Where a finished clip lies."""
        return self.folder / f"{export_id}.mp4"

    def manifest_path(self, export_id: str) -> Path:
        """Where its signed manifest lies."""
        return self.folder / f"{export_id}.json"

    # --- jobs ------------------------------------------------------------------------------

    async def create(
        self, camera: dict[str, Any], start: float, end: float, user_id: int | None, username: str
    ) -> dict[str, Any]:
        """Record the job and ask the edge for the clip; returns the job row."""
        token = new_token(self.token_prefix)
        args = ExportArgs(
            token=token,
            camera=camera["camera_id"],
            start=datetime.fromtimestamp(start, UTC),
            end=datetime.fromtimestamp(end, UTC),
        )
        row = await self._open(
            camera, start, end, user_id, username, status="requested", source="edge", stream="main"
        )
        export_id = row["id"]
        self._tokens[token] = (export_id, time.monotonic() + CONNECT_TIMEOUT_S)
        try:
            request_id = await asyncio.to_thread(
                self._send, camera["site_id"], VERB_EXPORT, args.model_dump(mode="json")
            )
        except Exception as e:  # noqa: BLE001 - broker trouble: the job fails visibly
            self._tokens.pop(token, None)
            await asyncio.to_thread(self._finish, export_id, "failed", f"not sent: {e}")
        else:
            await asyncio.to_thread(self._update, export_id, {"request_id": request_id})
        return await asyncio.to_thread(self.get, Scope.everything(), export_id)

    async def create_from_archive(
        self,
        camera: dict[str, Any],
        start: float,
        end: float,
        user_id: int | None,
        username: str,
        cut: Callable[[Path], tuple[Lane, ClipManifest]],
    ) -> dict[str, Any]:
        """Cut the clip at central from the city archive (`cut` writes the file and returns
        the stream and manifest), check its chain and sign it like an edge's; the job row."""
        row = await self._open(
            camera, start, end, user_id, username, status="cutting", source="archive", stream=None
        )
        export_id = row["id"]
        part = self.folder / f"{export_id}.mp4.part"
        try:
            stream, manifest = await asyncio.to_thread(cut, part)
        except ArchiveExportError as e:
            await asyncio.to_thread(self._fail, export_id, part, str(e))
        else:
            await asyncio.to_thread(self._update, export_id, {"stream": stream})
            done = End(reason="done")
            error = await asyncio.to_thread(self._accept, row, part, manifest, done, stream)
            if error is not None:
                await asyncio.to_thread(self._fail, export_id, part, error)
        return await asyncio.to_thread(self.get, Scope.everything(), export_id)

    async def _open(
        self,
        camera: dict[str, Any],
        start: float,
        end: float,
        user_id: int | None,
        username: str,
        *,
        status: str,
        source: str,
        stream: Lane | None,
    ) -> dict[str, Any]:
        """Record a new job for `camera` in `status`, cut at `source` (`stream` None: not
        known until the clip is cut); returns the row recorded."""
        row = {
            "id": str(uuid.uuid4()),
            "site_id": camera["site_id"],
            "camera_id": camera["camera_id"],
            "org_path": camera["org_path"],
            "start": start,
            "end": end,
            "user_id": user_id,
            "username": username,
            "status": status,
            "source": source,
            "stream": stream,
            "created_at": time.time(),
        }
        await asyncio.to_thread(self._insert, row)
        return row

    def _insert(self, row: dict[str, Any]) -> None:
        with self.database.transaction() as db:
            db.table("video_exports").insert(row)

    def _update(self, export_id: str, changes: dict[str, Any]) -> None:
        with self.database.transaction() as db:
            db.table("video_exports").update(export_id, changes)

    def _finish(self, export_id: str, status: str, error: str | None = None, **facts: Any) -> None:
        self._update(
            export_id, {"status": status, "error": error, "finished_at": time.time(), **facts}
        )

    def _fail(self, export_id: str, part: Path, error: str) -> None:
        """Drop the clip received or cut so far and mark the job failed, saying why."""
        part.unlink(missing_ok=True)
        self._finish(export_id, "failed", error)

    def get(self, scope: Scope, export_id: str) -> dict[str, Any]:
        """One job; NotFoundError if unknown or outside `scope`."""
        with self.database.lock:
            rows = list(
                self.database.db.query("select * from video_exports where id = ?", [export_id])
            )
        if not rows or not in_scope(scope, rows[0]["org_path"]):
            raise NotFoundError(f"export {export_id!r} not found")
        return dict(rows[0])

    def recent(self, scope: Scope, limit: int = 50) -> list[dict[str, Any]]:
        """The newest jobs in scope."""
        where, args = scope_filter(scope)
        sql = f"select * from video_exports where {where} order by created_at desc limit ?"
        with self.database.lock:
            return [dict(r) for r in self.database.db.query(sql, [*args, limit])]

    def expire(self) -> None:
        """Fail the jobs whose edge never connected (runs in a worker thread)."""
        now = time.monotonic()
        for token, (export_id, deadline) in list(self._tokens.items()):
            if now > deadline:
                self._tokens.pop(token, None)
                self._finish(export_id, "failed", "the edge did not send the clip in time")

    # --- the edge's upload -----------------------------------------------------------------

    def claim(self, token: str) -> str | None:
        """The export a connecting edge's token is for (once)."""
        entry = self._tokens.pop(token, None)
        return entry[0] if entry is not None else None

    async def receive(self, ws: web.WebSocketResponse, export_id: str) -> None:
        """Take the clip, its manifest and the end message from the edge's socket."""
        part = self.folder / f"{export_id}.mp4.part"
        job = await asyncio.to_thread(self.get, Scope.everything(), export_id)
        await asyncio.to_thread(self._update, export_id, {"status": "receiving"})
        manifest: ClipManifest | None = None
        end: End | None = None
        size = 0
        f = await asyncio.to_thread(part.open, "wb")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    header, payload = unpack_frame(msg.data)
                    size += len(payload)
                    if header.kind is not FrameKind.FILE or size > MAX_EXPORT_BYTES:
                        raise InvalidPayload("unexpected frame or clip too large")
                    await asyncio.to_thread(f.write, payload)
                elif msg.type == WSMsgType.TEXT:
                    control = parse_control(msg.data)
                    manifest = control if isinstance(control, ClipManifest) else manifest
                    end = control if isinstance(control, End) else end
                if end is not None:
                    break
        except InvalidPayload as e:
            end = End(reason=f"error: {e}")
        finally:
            await asyncio.to_thread(f.close)
        error = await asyncio.to_thread(self._accept, job, part, manifest, end)
        if error is not None:
            await asyncio.to_thread(self._fail, export_id, part, error)
            log.warning("export %s failed: %s", export_id, error)

    def _check_anchors(self, manifest: ClipManifest) -> str | None:
        """Why central will not sign the edge's clip, or None: its segments must be the ones
        central anchored when the box sealed them (segments sealed after the last anchor are
        not vouched for yet and pass). The manifest's own chain proves only that the box's
        index agrees with itself, which a box that rewrote a segment and rebuilt its index
        also achieves. A segment whose anchored link differs is also a tamper finding."""
        with self.database.transaction() as db:
            mismatches, _ = anchor_mismatches(db, manifest)
            changed = [
                Finding(manifest.site, manifest.camera, path, problem)
                for path, problem in mismatches
                if problem == DIFFERS
            ]
            if changed:
                report(db, changed, "export", time.time())
        if not mismatches:
            return None
        listed = "; ".join(f"{path}: {problem}" for path, problem in mismatches[:3])
        return f"the clip's segments are not those central anchored from the edge: {listed}"

    def _accept(
        self,
        job: dict[str, Any],
        part: Path,
        manifest: ClipManifest | None,
        end: End | None,
        stream: Lane = "main",
    ) -> str | None:
        """Check, sign and keep the clip; the reason it is refused, or None."""
        if end is None or end.reason != "done":
            return end.reason if end is not None else "the edge closed before the clip ended"
        if manifest is None:
            return "the edge sent no manifest"
        if (manifest.site, manifest.camera) != (job["site_id"], lane_id(job["camera_id"], stream)):
            return "the manifest is for another camera"
        if part.stat().st_size != manifest.file.bytes or file_sha256(part) != manifest.file.sha256:
            return "the received clip does not match the edge's manifest"
        problems = chain_problems(manifest)
        if problems:
            return "the segment chain is broken: " + "; ".join(problems[:3])
        if job.get("source") != "archive":  # the archive checked its files when it took them
            refused = self._check_anchors(manifest)
            if refused is not None:
                return refused
        signed = self.signer.sign(manifest)
        write_whole(
            self.manifest_path(job["id"]), signed.model_dump_json(indent=2).encode(), mode=0o644
        )
        put_in_place(part, self.clip_path(job["id"]))
        self._finish(
            job["id"],
            "done",
            None,
            bytes=manifest.file.bytes,
            sha256=manifest.file.sha256,
            clip_start=manifest.clip_start,
            clip_end=manifest.clip_end,
        )
        return None
