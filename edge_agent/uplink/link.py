"""One outbound WebSocket to central carrying a media uplink (the edge always dials out)."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable
from types import TracebackType

import aiohttp

from edge_agent.errors import UplinkError
from edge_agent.uplink.budget import TrafficClass
from edge_agent.uplink.fmp4 import Chunk
from edge_agent.uplink.scheduler import UplinkScheduler
from fsv_contract.video import TOKEN_HEADER, UPLINK_PATH, End, Hello, Stats, control_json

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
HEARTBEAT_S = 10.0  # ping interval; a peer silent for about this long ends the link
MAX_INCOMING = 64 * 1024


def uplink_url(central_url: str) -> str:
    """The WebSocket URL of central's uplink endpoint (wss:// for an https:// central)."""
    base = central_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + UPLINK_PATH
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :] + UPLINK_PATH
    raise UplinkError(f"central_url {central_url!r} is not http(s)")


def _is_stop(text: str) -> bool:
    try:
        message = json.loads(text)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "stop"


class UplinkLink:
    """An open uplink: send the hello, chunks and the end; learn when central says stop.

    Use as `async with UplinkLink(...) as link:`; `stopped` is set once central closes the
    socket or sends `{"type": "stop"}`. Every frame first takes its share of the site's
    uplink budget (`scheduler`, in traffic class `cls`).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        central_url: str,
        token: str,
        ssl_ctx: ssl.SSLContext | None = None,
        scheduler: UplinkScheduler | None = None,
        cls: TrafficClass = TrafficClass.LIVE,
    ) -> None:
        self._session = session
        self._url = uplink_url(central_url)
        self._token = token
        self._ssl = ssl_ctx
        self._scheduler = scheduler
        self.cls = cls
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self.stopped = asyncio.Event()
        self.sent_bytes = 0
        self._stop_callbacks: list[Callable[[], None]] = []
        self._close_callbacks: list[Callable[[], None]] = []

    async def __aenter__(self) -> UplinkLink:
        try:
            self._ws = await self._session.ws_connect(
                self._url,
                headers={TOKEN_HEADER: self._token},
                heartbeat=HEARTBEAT_S,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                max_msg_size=MAX_INCOMING,
                ssl=self._ssl or True if self._url.startswith("wss://") else False,
                compress=0,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            self._run_close_callbacks()
            raise UplinkError(f"cannot reach central for the uplink: {e}") from e
        self._reader = asyncio.create_task(self._read(), name="uplink-read")
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        self._run_close_callbacks()

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call `callback` once when the link is done (closed, or never opened)."""
        self._close_callbacks.append(callback)

    def _run_close_callbacks(self) -> None:
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            callback()

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the loop) once central stops the uplink or the socket closes."""
        self._stop_callbacks.append(callback)
        if self.stopped.is_set():
            callback()

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT and _is_stop(msg.data):
                    break
        finally:
            self.stopped.set()
            for callback in self._stop_callbacks:
                callback()

    def _open(self) -> aiohttp.ClientWebSocketResponse:
        ws = self._ws
        if ws is None or ws.closed or self.stopped.is_set():
            raise UplinkError("central closed the uplink")
        return ws

    async def hello(self, hello: Hello) -> None:
        """Describe the media that follows."""
        await self._send_text(control_json(hello))

    async def stats(self, dropped: int) -> None:
        """Report what went up so far."""
        await self._send_text(control_json(Stats(sent_bytes=self.sent_bytes, dropped=dropped)))

    async def end(self, reason: str) -> None:
        """Say why the uplink ends (best effort: the socket may already be gone)."""
        try:
            await self._send_text(control_json(End(reason=reason[:500])))
        except UplinkError:
            pass

    async def text(self, text: str) -> None:
        """Send a raw control frame (e.g. a clip manifest)."""
        await self._send_text(text)

    async def chunk(self, chunk: Chunk) -> None:
        """Send one binary frame; waits while the socket's buffer is full (backpressure)."""
        await self.raw(chunk.frame())

    async def raw(self, frame: bytes) -> None:
        """Send one binary frame as is."""
        await self._budget(len(frame))
        ws = self._open()
        try:
            await ws.send_bytes(frame)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as e:
            raise UplinkError(f"uplink lost: {e}") from e
        self.sent_bytes += len(frame)

    async def _budget(self, nbytes: int) -> None:
        if self._scheduler is not None:
            self._open()  # a closed link does not queue for budget
            await self._scheduler.acquire_async(self.cls, nbytes)

    async def _send_text(self, text: str) -> None:
        await self._budget(len(text))
        ws = self._open()
        try:
            await ws.send_str(text)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as e:
            raise UplinkError(f"uplink lost: {e}") from e
