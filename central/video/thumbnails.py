"""Scrubbing previews: one small keyframe JPEG per camera per `step_s` seconds, cached here.

Where a preview comes from, cheapest first:
1. central's cache (a folder of JPEGs, bounded in bytes, least recently used evicted);
2. the city archive, when it holds the moment: one keyframe decoded on central, the site's
   line untouched;
3. the edge, when it is online: a `thumbnail` command; the edge decodes the keyframe and
   sends the JPEG (a few KB) over the uplink in class `bulk`, the budget's lowest, so a
   preview never delays video someone watches, evidence or the archive transfer. While a
   regulator watches a stream of that site, bulk waits: previews of edge-only footage then
   time out rather than steal the line (the page shows just the time).

Why whole buckets and keyframes: a thin uplink cannot afford a picture per mouse pixel. The
moment asked for is rounded to its bucket, so every viewer and every hover in those seconds
shares one picture, and a keyframe decodes alone (no GOP to send or decode). The price: a
preview shows the keyframe at or before the first moment asked in its bucket, up to a GOP
plus `step_s` away from the exact time under the pointer. A moment nobody recorded is
remembered briefly, so hovering over a gap sends no commands again; at most `per_site` edge
requests run per site at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import WSMsgType, web

from central.archive.sources import archived_lanes
from central.archive.store import Stored
from central.archive.transfer import Archive
from central.errors import CentralError, NotFoundError
from central.video.hub import Sender, new_token
from central.video.single_flight import SingleFlight
from fsv_common.thumbnail import MAX_JPEG_BYTES, ThumbnailError, is_jpeg, keyframe_jpeg
from fsv_contract.errors import InvalidPayload
from fsv_contract.lanes import split_lane
from fsv_contract.video import (
    VERB_THUMBNAIL,
    End,
    FrameKind,
    ThumbnailArgs,
    parse_control,
    unpack_frame,
)

log = logging.getLogger(__name__)

STEP_S = 10.0
MAX_BYTES = 64 << 20  # about 10,000 previews of 5-7 KB
EDGE_TIMEOUT_S = 8.0
MISS_TTL_S = 60.0
PER_SITE = 2
MAX_MISSES = 10_000

Key = tuple[str, str, int, str]  # site, camera, bucket start (UTC seconds), archive | edge


class ThumbnailBusy(CentralError):
    """The site has as many preview requests running as it may; ask again shortly."""


class EdgeTimeout(CentralError):
    """The edge sent no preview in time (offline, its line busy with video, or slow)."""


class ThumbnailCache:
    """Previews on disk under `folder/<site>/<camera>/<bucket>-<source>.jpg`, at most
    `max_bytes`. A bucket where the archive's footage meets the edge's may hold one of each:
    a preview comes from where replay would play that moment from."""

    def __init__(
        self,
        folder: Path,
        send: Sender,
        step_s: float = STEP_S,
        max_bytes: int = MAX_BYTES,
        edge_timeout_s: float = EDGE_TIMEOUT_S,
        per_site: int = PER_SITE,
    ) -> None:
        self.folder = folder
        self._send = send
        self.step_s = step_s
        self.max_bytes = max_bytes
        self.edge_timeout_s = edge_timeout_s
        self.per_site = per_site
        self._files: OrderedDict[Key, int] = OrderedDict()  # least recently used first
        self._bytes = 0
        self._misses: dict[Key, tuple[float, str]] = {}
        self._inflight: SingleFlight[Key, tuple[bytes, str, bool]] = SingleFlight()
        self._edge_running: dict[str, int] = {}
        self._tokens: dict[str, tuple[Key, asyncio.Future[bytes], float]] = {}
        self.made = {"archive": 0, "edge": 0}
        self.token_prefix = ""  # `{node_id}-` with several nodes (see hub.new_token)
        folder.mkdir(parents=True, exist_ok=True)
        self._load()

    def key(self, site: str, camera: str, at: float, source: str) -> Key:
        """The bucket a moment falls in."""
        return site, camera, int(at // self.step_s * self.step_s), source

    def path(self, key: Key) -> Path:
        """Where a bucket's preview is kept."""
        site, camera, bucket, source = key
        return self.folder / site / camera / f"{bucket}-{source}.jpg"

    @property
    def held_bytes(self) -> int:
        """Bytes the cache holds now."""
        return self._bytes

    # --- asking --------------------------------------------------------------------------

    async def get(
        self, archive: Archive, site: str, camera: str, at: float, edge_online: bool
    ) -> tuple[bytes, str, bool]:
        """(JPEG, source, cached) of the bucket of `at`: source is `archive` or `edge` (where
        the picture was made), cached whether it was kept from an earlier request.

        NotFoundError when nothing is recorded there, ThumbnailBusy or EdgeTimeout when the
        edge cannot answer now.
        """
        stored = await asyncio.to_thread(_archived_at, archive, site, camera, at)
        key = self.key(site, camera, at, "edge" if stored is None else "archive")
        if key in self._files:
            try:
                data = await asyncio.to_thread(self.path(key).read_bytes)
                self._files.move_to_end(key)
                return data, key[3], True
            except OSError:
                self._forget(key)
        miss = self._misses.get(key)
        if miss is not None and miss[0] > time.monotonic():
            raise NotFoundError(miss[1])
        return await self._inflight.run(
            key, lambda: self._make(archive, stored, key, at, edge_online)
        )

    async def _make(
        self, archive: Archive, stored: Stored | None, key: Key, moment: float, edge_online: bool
    ) -> tuple[bytes, str, bool]:
        site, camera = key[0], key[1]
        if stored is not None:
            path = archive.file(site, stored.path)
            try:
                data = await asyncio.to_thread(keyframe_jpeg, path, moment - stored.start)
            except ThumbnailError as e:
                log.warning("%s/%s: archived %s gives no preview: %s", site, camera, path, e)
                raise self._miss(key, f"the archived segment gives no preview: {e}") from e
            await self._keep(key, data)
            self.made["archive"] += 1
            return data, "archive", False
        if not edge_online:
            raise self._miss(key, "nothing archived there and the edge is offline")
        if self._edge_running.get(site, 0) >= self.per_site:
            raise ThumbnailBusy(f"site {site!r} is already sending {self.per_site} previews")
        self._edge_running[site] = self._edge_running.get(site, 0) + 1
        try:
            data = await self._from_edge(key, moment)
        finally:
            self._edge_running[site] -= 1
        await self._keep(key, data)
        self.made["edge"] += 1
        return data, "edge", False

    async def _from_edge(self, key: Key, moment: float) -> bytes:
        site, camera = key[0], key[1]
        token = new_token(self.token_prefix)
        arrived: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._tokens[token] = (key, arrived, time.monotonic() + self.edge_timeout_s)
        args = ThumbnailArgs(token=token, camera=camera, at=datetime.fromtimestamp(moment, UTC))
        try:
            await asyncio.to_thread(self._send, site, VERB_THUMBNAIL, args.model_dump(mode="json"))
            async with asyncio.timeout(self.edge_timeout_s):
                return await arrived
        except TimeoutError as e:
            raise EdgeTimeout(
                f"site {site!r} sent no preview in {self.edge_timeout_s:.0f} s"
            ) from e
        except ThumbnailError as e:
            raise self._miss(key, str(e)) from e
        finally:
            self._tokens.pop(token, None)

    def _miss(self, key: Key, reason: str) -> NotFoundError:
        """Remember for a while that a bucket has no picture; the error to raise."""
        if len(self._misses) >= MAX_MISSES:
            self._misses.clear()
        self._misses[key] = (time.monotonic() + MISS_TTL_S, reason)
        return NotFoundError(reason)

    # --- the edge's upload ---------------------------------------------------------------

    def claim(self, token: str) -> str | None:
        """The token itself when a preview waits for it (once), else None."""
        entry = self._tokens.get(token)
        if entry is None or entry[1].done():
            return None
        return token

    async def receive(self, ws: web.WebSocketResponse, token: str) -> None:
        """Take one JPEG and the end message from the edge's socket."""
        entry = self._tokens.get(token)
        if entry is None:
            return
        data = b""
        end: End | None = None
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    header, payload = unpack_frame(msg.data)
                    if (
                        header.kind is not FrameKind.FILE
                        or len(data) + len(payload) > MAX_JPEG_BYTES
                    ):
                        raise InvalidPayload("unexpected frame or preview too large")
                    data += bytes(payload)
                elif msg.type == WSMsgType.TEXT:
                    control = parse_control(msg.data)
                    end = control if isinstance(control, End) else end
                if end is not None:
                    break
        except InvalidPayload as e:
            end = End(reason=f"error: {e}")
        arrived = entry[1]
        if arrived.done():
            return
        if end is not None and end.reason == "done" and is_jpeg(data):
            arrived.set_result(data)
        else:
            why = end.reason if end is not None else "the edge closed before the preview"
            if end is not None and end.reason == "done":
                why = "the edge sent something that is not a JPEG"
            log.info("no preview from %s/%s: %s", entry[0][0], entry[0][1], why)
            arrived.set_exception(ThumbnailError(why.removeprefix("error: ")))

    # --- the folder ----------------------------------------------------------------------

    def _load(self) -> None:
        found = []
        for path in self.folder.glob("*/*/*.jpg"):
            with contextlib.suppress(OSError, ValueError):
                stat = path.stat()
                bucket, source = path.stem.split("-")
                if source not in ("archive", "edge"):
                    continue
                key = (path.parent.parent.name, path.parent.name, int(bucket), source)
                found.append((stat.st_mtime, key, stat.st_size))
        for _mtime, key, size in sorted(found):
            self._files[key] = size
            self._bytes += size
        _unlink(self._evict())

    async def _keep(self, key: Key, data: bytes) -> None:
        await asyncio.to_thread(_write, self.path(key), data)
        self._forget(key)
        self._files[key] = len(data)
        self._bytes += len(data)
        gone = self._evict()
        if gone:
            await asyncio.to_thread(_unlink, gone)

    def _forget(self, key: Key) -> None:
        size = self._files.pop(key, None)
        if size is not None:
            self._bytes -= size

    def _evict(self) -> list[Path]:
        """Drop the least recently used previews past the bound; their files to delete."""
        gone = []
        while self._bytes > self.max_bytes and self._files:
            key = next(iter(self._files))
            self._forget(key)
            gone.append(self.path(key))
        return gone


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _archived_at(archive: Archive, site: str, camera: str, moment: float) -> Stored | None:
    """The archived segment holding `moment` (main stream first, else the sub lane), if any."""
    for seg in archived_lanes(archive.store, site, camera, moment, moment + 0.001):
        if seg.start <= moment < seg.end and split_lane(seg.camera)[1] == "main":
            return seg
    for seg in archived_lanes(archive.store, site, camera, moment, moment + 0.001):
        if seg.start <= moment < seg.end:
            return seg
    return None
