"""The uplink component: runs media uplinks on one event-loop thread, on central's commands.

Command handlers run on the MQTT command thread: they check the arguments and what this
agent can serve, start the uplink on the loop and answer at once. The uplink itself is the
real answer: central waits for the edge's WebSocket, not for the reply.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from edge_agent.central_http import ssl_context
from edge_agent.config import EdgeConfig
from edge_agent.errors import UplinkError
from edge_agent.recording.index import SegmentIndex
from edge_agent.uplink.budget import TrafficClass
from edge_agent.uplink.export import export_clip
from edge_agent.uplink.link import UplinkLink
from edge_agent.uplink.live import run_live
from edge_agent.uplink.recordings import recorded, segments_between
from edge_agent.uplink.replay import run_replay
from edge_agent.uplink.scheduler import UplinkScheduler
from edge_agent.uplink.tap import LiveTap, TapRegistry
from fsv_common.thumbnail import ThumbnailError, keyframe_jpeg
from fsv_contract.video import (
    ExportArgs,
    FrameHeader,
    FrameKind,
    Hello,
    RecordingsArgs,
    StreamStartArgs,
    StreamStopArgs,
    ThumbnailArgs,
    control_json,
)

log = logging.getLogger(__name__)

MAX_SESSIONS = 32  # uplinks at once; a box behind a thin line must not flood it
FILE_CHUNK = 256 * 1024
STOP_TIMEOUT_S = 5.0


class UplinkService:
    """Component `uplink`: live, replay, export and thumbnail uplinks to central."""

    name = "uplink"

    def __init__(
        self,
        config: EdgeConfig,
        index: SegmentIndex,
        taps: TapRegistry,
        scheduler: UplinkScheduler | None = None,
    ) -> None:
        self.config = config
        self.scheduler = scheduler or UplinkScheduler(None)
        self.index = index
        self.taps = taps
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: aiohttp.ClientSession | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._sessions: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self.sent_bytes = 0  # finished uplinks together, since start
        self.started_sessions = 0
        self._links: set[UplinkLink] = set()
        self._rate_mark: tuple[float, int] | None = None

    # --- component ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the event-loop thread `uplink`."""
        self._ready.clear()
        self._thread = threading.Thread(target=self._run_loop, name="uplink", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)

    def stop(self) -> None:
        """End every uplink and stop the loop."""
        loop = self._loop
        if loop is None:
            return
        for future in list(self._sessions.values()):
            future.cancel()
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(STOP_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
        self._loop = None

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.run_until_complete(self._open())
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _open(self) -> None:
        self._http = aiohttp.ClientSession()

    async def _shutdown(self) -> None:
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    def uplink_bps(self) -> float:
        """Bits per second pushed to central since the previous call (heartbeat figure)."""
        total = self.sent_bytes + sum(link.sent_bytes for link in list(self._links))
        now = time.monotonic()
        mark, self._rate_mark = self._rate_mark, (now, total)
        if mark is None or now <= mark[0]:
            return 0.0
        return 8 * max(0, total - mark[1]) / (now - mark[0])

    @property
    def active(self) -> int:
        """Uplinks running now."""
        return len(self._sessions)

    # --- command handlers (MQTT command thread) -------------------------------------------

    def stream_start(self, args: dict[str, Any]) -> dict[str, Any]:
        """`stream_start`: check, then open the uplink in the background."""
        a = StreamStartArgs.model_validate(args)
        self._check_fresh(a.expires_at)
        cam = self._camera(a.camera)
        if a.mode == "live":
            tap = self.taps.get(a.camera, a.stream)
            self._spawn(a.token, self._live(a, tap.camera, tap.bitrate_bps() or None))
            return {"accepted": True, "online": tap.online()}
        # A replay of stream `sub` plays the camera's sub lane (recorded where its record_sub
        # or the site's archive policy says so; where it never was, the replay says so).
        self._spawn(a.token, self._replay(a, cam))
        return {"accepted": True}

    def stream_stop(self, args: dict[str, Any]) -> dict[str, Any]:
        """`stream_stop`: close the uplink of a token (central normally just closes it)."""
        a = StreamStopArgs.model_validate(args)
        with self._lock:
            future = self._sessions.get(a.token)
        if future is not None:
            future.cancel()
        return {"stopped": future is not None}

    def recordings(self, args: dict[str, Any]) -> dict[str, Any]:
        """`recordings`: ranges and gaps of a camera between two times."""
        a = RecordingsArgs.model_validate(args)
        self._camera(a.camera)
        return recorded(self.index, a.camera, a.start.timestamp(), a.end.timestamp())

    def export_clip(self, args: dict[str, Any]) -> dict[str, Any]:
        """`export_clip`: cut and upload a clip in the background."""
        a = ExportArgs.model_validate(args)
        self._camera(a.camera)
        self._spawn(a.token, self._export(a))
        return {"accepted": True}

    def thumbnail(self, args: dict[str, Any]) -> dict[str, Any]:
        """`thumbnail`: send a keyframe's small JPEG in the background, at low priority."""
        a = ThumbnailArgs.model_validate(args)
        self._camera(a.camera)
        self._spawn(a.token, self._thumbnail(a))
        return {"accepted": True}

    # --- internals ---------------------------------------------------------------------------

    def _camera(self, camera: str) -> str:
        try:
            return self.config.camera(camera).id
        except KeyError:
            raise UplinkError(f"no camera {camera!r} on this agent") from None

    @staticmethod
    def _check_fresh(expires_at: datetime | None) -> None:
        if expires_at is not None and expires_at.timestamp() < time.time():
            raise UplinkError("the stream request expired before it arrived")

    def _spawn(self, token: str, work: Coroutine[Any, Any, None]) -> None:
        loop = self._loop
        if loop is None or self._http is None:
            work.close()
            raise UplinkError("the uplink service is not running")
        with self._lock:
            if token in self._sessions:
                work.close()
                return  # a redelivered command: that uplink already runs
            if len(self._sessions) >= MAX_SESSIONS:
                work.close()
                raise UplinkError(f"this agent already runs {MAX_SESSIONS} uplinks")
            future = asyncio.run_coroutine_threadsafe(self._guard(token, work), loop)
            self._sessions[token] = future
            self.started_sessions += 1

    async def _guard(self, token: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except UplinkError as e:
            log.warning("uplink %s…: %s", token[:6], e)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one uplink's bug must not end the others
            log.exception("uplink %s… failed", token[:6])
        finally:
            with self._lock:
                self._sessions.pop(token, None)

    def _link(self, token: str, cls: TrafficClass = TrafficClass.LIVE) -> UplinkLink:
        if not self.config.central_url or self._http is None:
            raise UplinkError("no central_url configured: cannot push video")
        ca = self.config.mqtt.upload.ca_file if self.config.mqtt else None
        ctx = ssl_context(ca) if self.config.central_url.startswith("https") else None
        link = UplinkLink(self._http, self.config.central_url, token, ctx, self.scheduler, cls)
        link.on_close(lambda: self._closed(link))
        self._links.add(link)
        return link

    def _closed(self, link: UplinkLink) -> None:
        if link in self._links:
            self._links.discard(link)
            self.sent_bytes += link.sent_bytes

    async def _live(self, a: StreamStartArgs, camera: str, bitrate: float | None) -> None:
        tap = self.taps.get(camera, a.stream)
        with self.scheduler.watching():
            await self._live_link(a, tap, bitrate)

    async def _live_link(self, a: StreamStartArgs, tap: LiveTap, bitrate: float | None) -> None:
        async with self._link(a.token) as link:
            try:
                reason = await run_live(link, tap, a.stream, bitrate_bps=bitrate)
            except UplinkError as e:
                reason = f"error: {e}"
            await link.end(reason)

    async def _replay(self, a: StreamStartArgs, camera: str) -> None:
        assert a.start is not None
        storage = self.config.storage.path
        start = a.start.timestamp()
        with self.scheduler.watching():
            async with self._link(a.token) as link:
                try:
                    reason = await run_replay(
                        link, self.index, storage, camera, start, a.speed, a.stream
                    )
                except UplinkError as e:
                    reason = f"error: {e}"
                await link.end(reason)

    async def _export(self, a: ExportArgs) -> None:
        folder = self.config.state_dir / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        start, end = a.start.timestamp(), a.end.timestamp()
        path = folder / f"{a.camera}-{int(start)}-{a.token[:8]}.mp4"
        try:
            async with self._link(a.token, TrafficClass.EVIDENCE) as link:
                try:
                    manifest = await asyncio.to_thread(
                        export_clip,
                        self.index,
                        self.config.storage.path,
                        self.config.site_id,
                        a.camera,
                        start,
                        end,
                        path,
                    )
                except UplinkError as e:
                    await link.end(f"error: {e}")
                    return
                await link.hello(
                    Hello(
                        camera=a.camera,
                        stream="main",
                        mode="export",
                        codec=manifest.codec,
                        mime="video/mp4",
                        width=0,
                        height=0,
                        origin_wall=manifest.clip_start,
                    )
                )
                await self._send_file(link, path)
                await link.text(control_json(manifest))
                await link.end("done")
        finally:
            path.unlink(missing_ok=True)

    async def _thumbnail(self, a: ThumbnailArgs) -> None:
        at = a.at.timestamp()
        # Class bulk: a preview never delays video someone watches, evidence or the archive.
        async with self._link(a.token, TrafficClass.BULK) as link:
            try:
                jpeg = await asyncio.to_thread(self._keyframe_jpeg, a.camera, at)
            except (UplinkError, ThumbnailError) as e:
                await link.end(f"error: {e}")
                return
            await link.raw(FrameHeader(FrameKind.FILE).pack(jpeg))
            await link.end("done")

    def _keyframe_jpeg(self, camera: str, at: float) -> bytes:
        storage = self.config.storage.path
        held = [
            s for s in segments_between(self.index, camera, at, at + 0.001, limit=4)
            if (storage / s.path).is_file()
        ]  # fmt: skip
        if not held:
            raise UplinkError(f"camera {camera!r} recorded nothing at that time")
        return keyframe_jpeg(storage / held[-1].path, at - held[-1].start)

    @staticmethod
    async def _send_file(link: UplinkLink, path: Path) -> None:
        header = FrameHeader(FrameKind.FILE)
        with path.open("rb") as f:
            while block := await asyncio.to_thread(f.read, FILE_CHUNK):
                await link.raw(header.pack(block))
