"""A WebSocket viewer: its bounded buffer and the task that drains it into the socket."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from central.video.buffer import ViewerBuffer

log = logging.getLogger(__name__)


class SocketViewer:
    """A viewer fed over a WebSocket; `pump()` sends what the upstream queued, in order.

    The upstream only queues (never awaits a viewer), so a slow socket delays nobody else;
    its buffer skips to the next keyframe when it falls too far behind.
    """

    def __init__(self, ws: web.WebSocketResponse, buffer: ViewerBuffer | None = None) -> None:
        self.ws = ws
        self.buffer = buffer or ViewerBuffer()
        self.sent_bytes = 0
        self._ready = asyncio.Event()
        self._closed = False
        self._finishing = False

    def control(self, text: str) -> None:
        """Queue a JSON control message."""
        self.buffer.control(text)
        self._ready.set()

    def init(self, frame: bytes) -> None:
        """Queue an init frame."""
        self.buffer.init(frame)
        self._ready.set()

    def media(self, frame: bytes, keyframe: bool) -> bool:
        """Queue a fragment frame."""
        kept = self.buffer.media(frame, keyframe)
        if kept:
            self._ready.set()
        return kept

    def finish(self, text: str) -> None:
        """Queue the end message; the pump closes the socket once it is sent."""
        self.buffer.control(text)
        self._finishing = True
        self._ready.set()

    def close(self) -> None:
        """Stop pumping."""
        self._closed = True
        self._ready.set()

    async def pump(self) -> None:
        """Send queued items until closed or the socket fails."""
        ws = self.ws
        while not self._closed:
            await self._ready.wait()
            self._ready.clear()
            for item in self.buffer.take():
                if ws.closed:
                    return
                try:
                    if isinstance(item, str):
                        await ws.send_str(item)
                    else:
                        await ws.send_bytes(item)
                        self.sent_bytes += len(item)
                except (ConnectionError, RuntimeError) as e:
                    log.debug("viewer socket failed: %s", e)
                    return
            if self._finishing:
                await ws.close()
                return
