"""Replay from the archive: archived segments sent to a viewer in the edge's replay protocol.

An archived segment is the recorder's fragmented MP4 as anchored: `ftyp`+`moov` (the init),
then `moof`+`mdat` pairs. Each segment starts its own media timeline (its own hello and
init, `origin_wall` = the segment's start), as the edge's replay does when a stream's
parameters change, so the replay page plays it without knowing where it came from; a
`{"type": "source", "source": "archive", "stream": "main"|"sub"}` message says so for pages
that show it (the edge's replay after the archive's footage ends: `"source": "edge",
"stream": "main"`, or `"sub"` when the viewer asked for the sub stream and the edge holds its
sub lane: `edge_stream`).
Fragments are paced at `speed` with a little lead, like the edge paces its replay.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from central.archive.store import Stored
from central.archive.transfer import Archive
from fsv_contract.lanes import Lane, lane_id
from fsv_contract.video import End, FrameFlags, FrameHeader, FrameKind, Hello, control_json

LEAD_S = 1.0
GAP_S = 2.0  # a larger jump between archived segments is a hole in the archive
WINDOW_S = 3600.0  # segments looked up per step
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"traf", b"moof"}


class Sink(Protocol):
    """A viewer socket (aiohttp WebSocketResponse)."""

    async def send_str(self, data: str) -> None: ...
    async def send_bytes(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class Fragment:
    """One `moof`+`mdat` pair and its decode time in seconds from the segment's start."""

    data: bytes
    at_s: float


@dataclass(frozen=True)
class Fmp4:
    """A segment file split for streaming."""

    init: bytes
    fragments: list[Fragment]
    codec: str
    mime: str
    width: int
    height: int


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of the boxes in data[start:end]; stops at a malformed box."""
    end = len(data) if end is None else end
    out = []
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        if size == 1 and i + 16 <= end:
            size = struct.unpack(">Q", data[i + 8 : i + 16])[0]
        if size < 8 or i + size > end:
            break
        out.append((kind, i, size))
        i += size
    return out


def _find(data: bytes, kind: bytes, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """(offset, size) of the first box of `kind` anywhere below data[start:end]; (-1, 0) if none."""
    for k, off, size in _boxes(data, start, end):
        if k == kind:
            return off, size
        if k in CONTAINERS:
            body = off + 8 + (8 if k == b"stsd" else 0)
            found = _find(data, kind, body, off + size)
            if found[0] >= 0:
                return found
        if k in (b"avc1", b"hvc1", b"hev1"):
            found = _find(data, kind, off + 8 + 78, off + size)  # after the sample entry
            if found[0] >= 0:
                return found
    return -1, 0


def _codec(init: bytes) -> tuple[str, str]:
    off, size = _find(init, b"avcC")
    if off >= 0 and size >= 12:
        profile = init[off + 9 : off + 12].hex()
        return "h264", f'video/mp4; codecs="avc1.{profile}"'
    if _find(init, b"hvcC")[0] >= 0:
        return "hevc", 'video/mp4; codecs="hvc1.1.6.L93.B0"'
    return "h264", 'video/mp4; codecs="avc1.42E01E"'


def split_fmp4(data: bytes) -> Fmp4:
    """The init and fragments of a fragmented MP4; ValueError if it is not one."""
    boxes = _boxes(data)
    init = b"".join(data[o : o + s] for k, o, s in boxes if k in (b"ftyp", b"moov"))
    if b"moov" not in init:
        raise ValueError("not a fragmented MP4: no moov box")
    off, _ = _find(init, b"mdhd")
    version = init[off + 8] if off >= 0 else 0
    if off < 0:
        timescale = 90000
    elif version == 1:
        timescale = struct.unpack(">I", init[off + 28 : off + 32])[0]
    else:
        timescale = struct.unpack(">I", init[off + 20 : off + 24])[0]
    fragments = []
    for i, (kind, o, s) in enumerate(boxes):
        if kind != b"moof" or i + 1 >= len(boxes) or boxes[i + 1][0] != b"mdat":
            continue
        moof = data[o : o + s]
        t_off, _ = _find(moof, b"tfdt")
        decode = 0
        if t_off >= 0:
            v = moof[t_off + 8]
            fmt = ">Q" if v == 1 else ">I"
            width = 8 if v == 1 else 4
            decode = struct.unpack(fmt, moof[t_off + 12 : t_off + 12 + width])[0]
        mdat = boxes[i + 1]
        fragments.append(Fragment(moof + data[mdat[1] : mdat[1] + mdat[2]], decode / timescale))
    t_off, t_size = _find(init, b"tkhd")
    w = h = 0
    if t_off >= 0:
        w, h = (v >> 16 for v in struct.unpack(">II", init[t_off + t_size - 8 : t_off + t_size]))
    codec, mime = _codec(init)
    return Fmp4(init, fragments, codec, mime, w, h)


class ArchiveReplay:
    """Sends a camera's archived footage from `start` to one viewer at `speed`."""

    def __init__(
        self,
        archive: Archive,
        site: str,
        camera: str,
        start: float,
        speed: float,
        edge_has: Callable[[float, float], bool] | None = None,
        stream: Lane = "main",
    ) -> None:
        self.archive = archive
        self.stream: Lane = stream  # which recording of the camera: its lane in the archive
        self.edge_has = edge_has
        self._skipped = 0.0
        self.site = site
        self.camera = camera
        self.start = start
        self.speed = speed
        self.sent_fragments = 0

    async def run(self, ws: Sink) -> float | None:
        """Stream until the archive has nothing further.

        Returns the time from which the edge should go on (it holds footage there that the
        archive does not: after the archive's end, or in a hole of it), or None once the
        replay ended here (an `end` message was sent).
        """
        loop = asyncio.get_running_loop()
        began = loop.time()
        await ws.send_str(
            json.dumps({"type": "source", "source": "archive", "stream": self.stream})
        )
        lane = lane_id(self.camera, self.stream)
        cursor = self.start
        sent_any = False
        while True:
            segments = await asyncio.to_thread(
                self.archive.store.between, self.site, lane, cursor, cursor + WINDOW_S
            )
            segments = [s for s in segments if s.end > cursor]
            if not segments:
                break
            for seg in segments:
                if sent_any and seg.start - cursor > GAP_S:
                    if await self._edge_has(cursor, seg.start):
                        return cursor  # the edge fills the archive's hole
                    self._skipped += seg.start - cursor  # a hole everywhere: not waited for
                await self._segment(ws, seg, began)
                sent_any = True
                cursor = seg.end
        if sent_any and await self._edge_has(cursor, cursor + 60.0):
            return cursor
        reason = "done: end of the archived recording" if sent_any else "nothing archived there"
        await ws.send_str(control_json(End(reason=reason)))
        return None

    async def _edge_has(self, start: float, end: float) -> bool:
        if self.edge_has is None:
            return False
        return await asyncio.to_thread(self.edge_has, start, end)

    async def _segment(self, ws: Sink, seg: Stored, began: float) -> None:
        path = self.archive.file(self.site, seg.path)
        data = await asyncio.to_thread(path.read_bytes)
        try:
            fmp4 = split_fmp4(data)
        except ValueError:
            return  # a stored file is checked against its hash; this cannot be, skip it
        hello = Hello(camera=self.camera, stream=self.stream, mode="replay", codec=fmp4.codec,
                      mime=fmp4.mime, width=fmp4.width, height=fmp4.height,
                      origin_wall=seg.start, speed=self.speed)  # fmt: skip
        await ws.send_str(control_json(hello))
        await ws.send_bytes(FrameHeader(FrameKind.INIT).pack(fmp4.init))
        loop = asyncio.get_running_loop()
        for i, frag in enumerate(fmp4.fragments):
            wall = seg.start + frag.at_s
            nxt = fmp4.fragments[i + 1].at_s if i + 1 < len(fmp4.fragments) else seg.end - seg.start
            due = began + max(0.0, wall - self.start - self._skipped) / self.speed - LEAD_S
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            header = FrameHeader(
                FrameKind.FRAGMENT,
                FrameFlags.KEYFRAME if i == 0 else FrameFlags.NONE,
                media_us=round(frag.at_s * 1e6),
                duration_us=max(0, round((nxt - frag.at_s) * 1e6)),
                wall_ms=round(wall * 1000),
            )
            await ws.send_bytes(header.pack(frag.data))
            self.sent_fragments += 1


def covers(archive: Archive, site: str, camera: str, start: float) -> bool:
    """Whether the archive holds footage of a lane at (or within a minute after) `start`."""
    return bool(archive.store.between(site, camera, start, start + 60.0))


def archived_stream(
    archive: Archive, site: str, camera: str, start: float, asked: Lane | None
) -> Lane | None:
    """Which of the camera's streams the archive replays from `start`: the one asked for, or
    (none asked) the main stream where it holds it, else the sub stream; None: neither."""
    for stream in (asked,) if asked else ("main", "sub"):
        if covers(archive, site, lane_id(camera, stream), start):
            return stream
    return None


async def serve_archive_replay(
    ws: Any, replay: ArchiveReplay, edge_stream: Lane = "main"
) -> float | None:
    """Run a replay on a prepared WebSocket until it ends or the viewer leaves.

    Returns the time the edge should go on from (the socket stays open for it; the viewer is
    told the edge's `edge_stream` follows), or None once the socket is done.
    """
    sender = asyncio.create_task(replay.run(ws), name=f"archive-replay {replay.camera}")
    reader = asyncio.create_task(_drain(ws), name="archive-replay-reader")
    handoff: float | None = None
    try:
        await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        if sender.done() and not sender.cancelled() and sender.exception() is None:
            handoff = sender.result()
    finally:
        for task in (sender, reader):
            task.cancel()
        await asyncio.gather(sender, reader, return_exceptions=True)
        if handoff is None or ws.closed:
            await ws.close()
            handoff = None
    if handoff is not None:
        await ws.send_str(json.dumps({"type": "source", "source": "edge", "stream": edge_stream}))
    return handoff


def edge_stream(archive: Archive, site: str, camera: str, start: float, asked: Lane | None) -> Lane:
    """Which recording the edge replays: its sub lane when the viewer asked for the sub
    stream and the edge's anchored chain holds sub lane footage after `start` (its sub
    stream was recorded), else its main stream, as before sub lanes."""
    if asked != "sub":
        return "main"
    with archive.central.read() as db:
        held = db.execute(
            "select 1 from anchored_segments where site = ? and camera = ? and removed_at "
            'is null and "end" > ? limit 1',
            [site, lane_id(camera, "sub"), start],
        ).fetchone()
    return "sub" if held is not None else "main"


def edge_holds(archive: Archive, site: str, camera: str) -> Callable[[float, float], bool]:
    """Whether the edge is online and (by its anchored chain) holds footage in [start, end)."""

    def check(start: float, end: float) -> bool:
        with archive.central.read() as db:
            row = db.execute("select state from agent_status where site = ?", [site]).fetchone()
            if row is None or row[0] != "online":
                return False
            held = db.execute(
                "select 1 from anchored_segments where site = ? and camera = ? and removed_at "
                'is null and "end" > ? and start < ? limit 1',
                [site, camera, start, end],
            ).fetchone()
        return held is not None

    return check


async def _drain(ws: Any) -> None:
    async for _msg in ws:
        pass  # viewers only listen
