"""The uplink budget over real sockets: HTTP PUTs to a loopback server share one budget,
archive pauses while someone watches and resumes where it stood."""

from __future__ import annotations

import hashlib
import http.client
import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from edge_agent.uplink.budget import TrafficClass
from edge_agent.uplink.scheduler import BudgetedReader, UplinkScheduler

RATE = 400_000  # bytes/s


class _Sink(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, str, int]] = []
        self.bodies: dict[str, bytes] = {}


class _Handler(BaseHTTPRequestHandler):
    server: _Sink

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        left = int(self.headers["Content-Length"])
        body = bytearray()
        while left:
            block = self.rfile.read1(min(left, 65536))
            if not block:
                break
            left -= len(block)
            body += block
            with self.server.lock:
                self.server.arrivals.append((time.monotonic(), self.path, len(block)))
        self.server.bodies[self.path] = bytes(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[_Sink]:
    server = _Sink()
    thread = threading.Thread(target=server.serve_forever, name="test-sink", daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _put(port: int, path: str, data: bytes, scheduler: UplinkScheduler, cls: TrafficClass) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        body = BudgetedReader(io.BytesIO(data), scheduler, cls)
        conn.request("PUT", path, body=body, headers={"Content-Length": str(len(data))})
        assert conn.getresponse().status == 204
    finally:
        conn.close()


def _received(sink: _Sink, path: str) -> int:
    with sink.lock:
        return sum(n for _, p, n in sink.arrivals if p == path)


def _wait(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_archive_pauses_for_a_viewer_and_resumes(sink: _Sink) -> None:
    port = sink.server_address[1]
    scheduler = UplinkScheduler(RATE, burst_s=0.1)
    archive = bytes(range(256)) * 4800  # 1.2 MB: three seconds of budget
    live = b"\x01" * (RATE // 2)
    sender = threading.Thread(
        target=_put, args=(port, "/archive", archive, scheduler, TrafficClass.ARCHIVE)
    )
    sender.start()
    _wait(lambda: _received(sink, "/archive") > 100_000)
    with scheduler.watching():
        watch_start = time.monotonic()
        granted_at_watch = scheduler.sent(TrafficClass.ARCHIVE)
        _put(port, "/live", live, scheduler, TrafficClass.LIVE)
        live_s = time.monotonic() - watch_start
        # While watched, archive got at most the block it held when the viewer came.
        assert scheduler.sent(TrafficClass.ARCHIVE) - granted_at_watch <= 16 * 1024
        assert scheduler.stats().archive_paused
    sender.join(60)
    assert not sender.is_alive()
    # The viewer had the line to itself: half a second of budget took about that long.
    assert live_s < 0.5 * 3 + 1.0
    assert sink.bodies["/live"] == live
    # Archive resumed and finished intact.
    assert hashlib.sha256(sink.bodies["/archive"]).digest() == hashlib.sha256(archive).digest()
    # The line as a whole never went faster than the budget (plus the saved-up burst).
    with sink.lock:
        times = [t for t, _, _ in sink.arrivals]
        total = sum(n for _, _, n in sink.arrivals)
    span = max(times) - min(times)
    assert total / span < RATE * 1.25


def test_evidence_goes_before_archive_on_a_busy_line(sink: _Sink) -> None:
    port = sink.server_address[1]
    scheduler = UplinkScheduler(RATE, burst_s=0.1)
    archive = b"\x02" * (RATE * 2)
    evidence = b"\x03" * (RATE // 2)
    threads = [
        threading.Thread(
            target=_put, args=(port, "/archive", archive, scheduler, TrafficClass.ARCHIVE)
        ),
    ]
    threads[0].start()
    _wait(lambda: _received(sink, "/archive") > 50_000)
    started = time.monotonic()
    _put(port, "/evidence", evidence, scheduler, TrafficClass.EVIDENCE)
    evidence_s = time.monotonic() - started
    threads[0].join(60)
    assert sink.bodies["/evidence"] == evidence
    # With strict priority evidence took (about) the whole line: 0.5 s of budget, not 1 s+.
    assert evidence_s < 0.5 * 2 + 0.5
