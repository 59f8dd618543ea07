"""The per-camera recorder component: connect, record, reconnect with back-off, report state."""

from __future__ import annotations

import errno
import logging
import queue
import shutil
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable

import av
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.video.stream import VideoStream

from edge_agent.config import CameraConfig, EdgeConfig, redact
from edge_agent.credentials import CredentialStore, with_credential
from edge_agent.errors import CredentialError, SegmentWriteError, UnsupportedStreamError
from edge_agent.recording.events import ListenerSet, PacketEvent
from edge_agent.recording.gaps import GapKeeper
from edge_agent.recording.index import Segment, SegmentIndex
from edge_agent.recording.segment_writer import (
    ClosedSegment,
    NoFrameError,
    SpaceGuard,
    delete_empty,
)
from edge_agent.recording.session import RecordingSession
from edge_agent.recording.status import Counters, RateMeter, RecorderStatus, State
from edge_agent.recording.streams import open_camera, select_streams
from edge_agent.restart_limiter import RestartLimiter
from edge_agent.retention.planner import required_free_bytes

log = logging.getLogger(__name__)

STOP_JOIN_S = 3.0  # how long stop() waits for the read loop before closing the segment itself
SEAL_JOIN_S = 10.0  # how long stop() waits for the last segments to be hashed and indexed
HEALTHY_S = 10.0  # a connection that recorded this long was healthy: its retries are forgotten
LOW_SPACE_SEGMENTS = 4  # wake the cleaner when free space is this many segments above the floor
FAST_RETRY_S = 2.0  # the longest wait between connects early in an outage
FAST_RETRY_WINDOW_S = 120.0  # how long an outage counts as a reboot, retried every FAST_RETRY_S
RESEAL_S = 5.0  # how soon a segment the index refused (full disk) is tried again
NO_FRAME_WRITTEN = "write failed before a frame reached the disk"  # the gap a dropped file leaves
# A connection that is online but reads nothing for this many read timeouts is stuck: a
# silent camera ends the read after one read timeout, so only a blocked thread stays.
STALL_READ_TIMEOUTS = 3.0

_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EPIPE: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EIO: "input/output error",
}


def failure_reason(error: BaseException, reading: bool) -> str:
    """A short, credential-free reason for a failed connection, for gaps and camera state.

    `reading` says whether the stream was already open (a timeout is then a read timeout).
    """
    if isinstance(error, UnsupportedStreamError | SegmentWriteError):
        return str(error)
    if isinstance(error, av.error.HTTPUnauthorizedError):
        return "unauthorized (check the camera credential)"
    if isinstance(error, av.error.HTTPForbiddenError):
        return "forbidden"
    if isinstance(error, av.error.HTTPNotFoundError):
        return "stream not found"
    if isinstance(error, av.error.ExitError | TimeoutError):
        return "read timeout" if reading else "open timeout"
    if isinstance(error, EOFError):
        return "stream ended"
    if isinstance(error, OSError) and error.errno in _ERRNO_REASONS:
        return _ERRNO_REASONS[error.errno]
    if isinstance(error, av.FFmpegError | OSError):
        # strerror is FFmpeg's message alone; str() would add the URL, login included.
        return f"stream error: {error.strerror or type(error).__name__}".lower()
    return f"internal error: {type(error).__name__}"


def _disk_full(error: BaseException) -> bool:
    """Whether an error (or the one it was raised from) is ENOSPC."""
    while error is not None:
        if isinstance(error, OSError | av.FFmpegError) and error.errno == errno.ENOSPC:
            return True
        error = error.__cause__  # type: ignore[assignment]
    return False


class CameraRecorder:
    """Records one camera's main stream into indexed segment files on a thread `rec-<id>`.

    Outages become gaps in the index and online/offline changes become camera states;
    `status()` is a snapshot for heartbeats. Listeners see packets (on the recording thread)
    and indexed segments (on the sealing thread `rec-<id>-seal`); both must return at once.
    """

    def __init__(
        self,
        camera: CameraConfig,
        config: EdgeConfig,
        index: SegmentIndex,
        credentials: CredentialStore,
    ) -> None:
        self.camera = camera
        self.config = config
        self.index = index
        self.credentials = credentials
        self.name = f"recorder {camera.id}"
        self.counters = Counters()
        self.packet_listeners: ListenerSet[PacketEvent] = ListenerSet("packet")
        self.segment_listeners: ListenerSet[Segment] = ListenerSet("segment")
        self._meter = RateMeter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sealer: threading.Thread | None = None
        self._sealing: queue.Queue[ClosedSegment | None] = queue.Queue()
        self._session: RecordingSession | None = None
        self._session_lock = threading.Lock()
        self._state: State = "starting"
        self._since = time.time()
        self._reason = "starting"
        self._gaps = GapKeeper(index, camera.id)
        self._last_end: float | None = None  # end of the last segment closed (or indexed)
        self._last_indexed_end: float | None = None
        self._connect_began = time.time()  # when the current connection was asked for
        self._dropped_audio: set[str] = set()
        # Called (on the recording or sealing thread) when the disk is full or about to be:
        # the agent points it at the retention cleaner's wake(). Must return at once.
        self.on_disk_low: Callable[[], None] | None = None
        self._guard = SpaceGuard(config.storage.path, config.storage.reserved_bytes)
        # stuck(): the packets read so far and when that total last changed (monotonic).
        self._progress: tuple[int, float] = (-1, 0.0)

    # --- component -------------------------------------------------------------------------

    def start(self) -> None:
        """Note the downtime since the last segment, then start recording on `rec-<id>`."""
        self._stop.clear()
        self._set_state("starting", "starting")
        self._sealing = queue.Queue()
        last = self._safe_last_segment()
        self._last_end = self._last_indexed_end = last.end if last else None
        self._gaps.resume(self._last_end)
        cam = self.camera.id
        self._sealer = threading.Thread(target=self._seal_loop, name=f"rec-{cam}-seal", daemon=True)
        self._thread = threading.Thread(target=self._run, name=f"rec-{cam}", daemon=True)
        self._sealer.start()
        self._thread.start()

    def stop(self) -> None:
        """Finish the current segment, index what is closed, and stop both threads."""
        if self._thread is None or self._stop.is_set():
            return  # never started, or already stopped
        self._stop.set()
        with self._session_lock:
            if self._session is not None:
                self._session.request_stop()
        self._thread.join(STOP_JOIN_S)
        if self._thread.is_alive():
            with self._session_lock:
                session = self._session
            if session is not None:
                log.warning(
                    "%s: camera read is blocked; closing the segment without it", self.camera.id
                )
                session.finish()
        if self._sealer is not None:
            self._sealing.put(None)
            self._sealer.join(SEAL_JOIN_S)
        self._gaps.stopped(self._last_end if self._state == "online" else None)
        self._set_state("stopped", "recorder stopped")

    def add_packet_listener(self, callback: Callable[[PacketEvent], None]) -> None:
        """Receive a copy of every recorded packet; runs on the recording thread, so be quick."""
        self.packet_listeners.add(callback)

    def add_segment_listener(self, callback: Callable[[Segment], None]) -> None:
        """Be told of every segment once it is indexed; runs on the sealing thread."""
        self.segment_listeners.add(callback)

    @property
    def running(self) -> bool:
        """Whether its thread is alive: it retries its camera forever, so a dead one is a bug."""
        return self._thread is not None and self._thread.is_alive()

    def stuck(self, now: float | None = None) -> str | None:
        """Why the recorder no longer records though it should, or None while it does.

        Its thread ended (it retries its camera forever, so that is a bug), or its connection
        is online yet no packet was read for STALL_READ_TIMEOUTS read timeouts (a camera that
        goes silent ends the read within one read timeout, so the thread is blocked). An
        unreachable camera is not stuck: the recorder is offline and retrying. Compares with
        the previous call, so call it regularly (the agent's health check does).
        """
        if self._thread is None:
            return None  # never started (or built but not yet started)
        if not self._thread.is_alive():
            return "recorder thread ended" if not self._stop.is_set() else None
        now = time.monotonic() if now is None else now
        c = self.counters
        total = c.video_packets + c.audio_packets + c.dropped + c.skipped
        read, since = self._progress
        if total != read or self._state != "online":
            self._progress = (total, now)
            return None
        limit = STALL_READ_TIMEOUTS * self.config.recorder.read_timeout_s
        idle = now - since
        return f"online but no packet read for {idle:.0f} s" if idle > limit else None

    def status(self) -> RecorderStatus:
        """A snapshot of state, rates and counters."""
        c = self.counters
        fps, bps = self._meter.sample(time.monotonic(), c.video_packets, c.bytes)
        if self._state != "online":
            fps = bps = 0.0
        return RecorderStatus(
            camera=self.camera.id,
            state=self._state,
            since=self._since,
            reason=self._reason,
            fps=fps,
            bitrate_bps=bps,
            last_segment_end=self._last_indexed_end,
            video_packets=c.video_packets,
            audio_packets=c.audio_packets,
            dropped=c.dropped,
            skipped=c.skipped,
            repaired=c.repaired,
            segments=c.segments,
            reconnects=c.reconnects,
            listener_errors=self.packet_listeners.errors + self.segment_listeners.errors,
        )

    # --- the recording thread --------------------------------------------------------------

    def _run(self) -> None:
        rc = self.config.recorder
        limiter = RestartLimiter(
            rc.backoff_initial_s, rc.backoff_max_s, rc.restart_limit, rc.restart_window_s
        )
        outage_since: float | None = None
        log.info("%s: connecting", self.camera.id)
        while not self._stop.is_set():
            reason, slow, recorded = self._attempt()
            if self._stop.is_set():
                break
            now = time.monotonic()
            if recorded is not None:  # it delivered video: a new outage begins now
                outage_since = now
                if recorded >= HEALTHY_S:
                    limiter.forget()
            elif outage_since is None:
                outage_since = now
            self._went_offline(reason)
            delay = self._retry_delay(limiter, now, now - outage_since, slow, recorded is not None)
            log.info("%s: reconnecting in %.1f s", self.camera.id, delay)
            self.counters.reconnects += 1
            self._stop.wait(delay)

    def _retry_delay(
        self, limiter: RestartLimiter, now: float, outage_s: float, slow: bool, restart: bool
    ) -> float:
        """Seconds to the next connect: a camera back from a reboot is found within seconds.

        For the first FAST_RETRY_WINDOW_S of an outage the back-off is capped at
        FAST_RETRY_S; only connections that delivered video and died count toward the
        restart limit (a flapping camera), failed connects do not.
        """
        rc = self.config.recorder
        if slow:
            return rc.backoff_max_s
        delay = limiter.next_delay(now, restart=restart)
        if not limiter.too_fast and outage_s < FAST_RETRY_WINDOW_S:
            delay = min(delay, FAST_RETRY_S)
        return delay

    def _attempt(self) -> tuple[str, bool, float | None]:
        """One connection: (why it ended, retry only slowly, seconds of video it recorded).

        The seconds are None when no frame reached a file.
        """
        session: RecordingSession | None = None
        container = None
        self._connect_began = time.time()
        try:
            container = open_camera(self._url(), self.config.recorder)
            if self._stop.is_set():
                return "stopped", False, None
            video, audio = select_streams(container, self.camera.id, self._dropped_audio)
            session = self._new_session(container, video, audio)
            reason = session.run(self._stop)
            if reason != "stopped":
                log.warning("%s: %s", self.camera.id, reason)
            return reason, False, session.recorded()
        except (UnsupportedStreamError, CredentialError) as e:
            log.error("%s: cannot record: %s", self.camera.id, e)
            return str(e), True, None
        except (av.FFmpegError, OSError, SegmentWriteError) as e:
            if _disk_full(e):
                self._disk_low()
            reason = failure_reason(e, reading=session is not None)
            log.warning("%s: %s", self.camera.id, reason)
            return reason, False, session.recorded() if session is not None else None
        except Exception as e:  # noqa: BLE001 - one camera's bug must not end the agent
            text = redact("".join(traceback.format_exception(e)))
            log.error("%s: recorder failed, will retry: %s", self.camera.id, text)
            return failure_reason(e, reading=session is not None), False, None
        finally:
            if session is not None:
                session.finish()
            with self._session_lock:
                self._session = None
            if container is not None:
                try:
                    container.close()
                except (av.FFmpegError, OSError) as e:
                    log.warning("%s: closing the stream failed: %s", self.camera.id, e.strerror)

    def _new_session(
        self, container: InputContainer, video: VideoStream, audio: AudioStream | None
    ) -> RecordingSession:
        session = RecordingSession(
            camera=self.camera.id,
            storage=self.config.storage.path,
            segment_s=float(self.config.storage.segment_seconds),
            container=container,
            video=video,
            audio=audio,
            events=self,
            counters=self.counters,
            meter=self._meter,
            packet_listeners=self.packet_listeners,
            previous_end=self._last_end,
            dropped_audio=self._dropped_audio,
            guard=self._guard,
        )
        with self._session_lock:
            self._session = session
        return session

    def _url(self) -> str:
        """The URL with the login inserted: never log it."""
        name = self.camera.credential
        return with_credential(self.camera.main_url, self.credentials.get(name) if name else None)

    # --- session events (recording thread) -------------------------------------------------

    def recording_started(self, start: float, keyframe_wait_s: float) -> None:
        """The camera delivers video again: it is online.

        The log line splits the time since the connect began: the stream's first keyframe
        came `keyframe_wait_s` (stream time) after its first packet, and the rest is the
        RTSP handshake (and, for the time written, the stream probing that ends av.open).
        """
        log.info("%s: recording (first frame written %.3f s after the connect began; "
                 "keyframe wait %.3f s of stream after the first packet)",
                 self.camera.id, time.time() - self._connect_began, keyframe_wait_s)  # fmt: skip
        self._gaps.online()
        self._set_state("online", "recording")

    def segment_closed(self, closed: ClosedSegment, first_of_session: bool) -> None:
        """Close the open gap where this connection's video begins; queue the file for sealing.

        Before the next file opens, a disk close to the watermark wakes the cleaner, so space
        is made before it is needed rather than a cleanup interval later.
        """
        self._last_end = closed.end
        if first_of_session:
            self._gaps.resumed(closed.start)
        self._sealing.put(closed)
        try:
            disk = shutil.disk_usage(self.config.storage.path)
            size = closed.path.stat().st_size
        except OSError:
            return
        floor = required_free_bytes(self.config.storage, disk.total)
        if disk.free < floor + LOW_SPACE_SEGMENTS * size:
            self._disk_low()

    def _drop_empty(self, closed: ClosedSegment, problem: str) -> None:
        """A write failed before any frame reached the file: delete it, keep its time a gap."""
        log.warning("%s: %s holds no video frame after a failed write (%s); deleted",
                    self.camera.id, closed.relpath, problem)  # fmt: skip
        delete_empty(closed.path, self.camera.id, closed.relpath)
        if closed.end > closed.start:
            self._gaps.hole(closed.start, closed.end, NO_FRAME_WRITTEN)

    def _disk_low(self) -> None:
        callback = self.on_disk_low
        if callback is not None:
            try:
                callback()
            except Exception:  # noqa: BLE001 - the recorder must go on whatever the listener does
                log.exception("%s: the disk-low callback failed", self.camera.id)

    def timeline_broken(self, previous_end: float, start: float, reason: str) -> None:
        """Record the hole a clock jump left inside one connection."""
        self._gaps.hole(previous_end, start, reason)

    # --- state -----------------------------------------------------------------------------

    def _went_offline(self, reason: str) -> None:
        was_online = self._state == "online" and self._last_end is not None
        since = self._last_end if was_online and self._last_end is not None else time.time()
        self._gaps.offline(reason, since)
        self._set_state("offline", reason)

    def _set_state(self, state: State, reason: str) -> None:
        if state != self._state:
            self._since = time.time()
        self._state = state
        self._reason = reason

    def _safe_last_segment(self) -> Segment | None:
        try:
            return self.index.last_segment(self.camera.id)
        except sqlite3.Error as e:
            log.error("%s: cannot read the index: %s", self.camera.id, e)
            return None

    # --- the sealing thread ----------------------------------------------------------------

    def _seal_loop(self) -> None:
        waiting: list[ClosedSegment] = []  # files the index refused (full disk), oldest first
        while True:
            try:
                closed = self._sealing.get(timeout=RESEAL_S if waiting else None)
            except queue.Empty:
                closed = waiting.pop(0)  # time to try the oldest refused file again
            else:
                if closed is None:
                    break
                if waiting:  # keep the chain in order: older refused files go first
                    waiting.append(closed)
                    closed = waiting.pop(0)
            if not self._seal_one(closed):
                waiting.insert(0, closed)
        for closed in waiting:
            log.error("%s: %s not indexed; the start-up repair will index it",
                      self.camera.id, closed.relpath)  # fmt: skip

    def _seal_one(self, closed: ClosedSegment) -> bool:
        """Hash (if needed) and index one file; False if the disk is full (try again later)."""
        try:
            segment = self.index.add_segment(closed.seal())
        except NoFrameError as e:
            self._drop_empty(closed, str(e))
            return True
        except (OSError, sqlite3.Error) as e:
            if isinstance(e, sqlite3.Error) or e.errno == errno.ENOSPC:
                # The index shares the disk: the cleaner makes room, the file waits.
                log.error("%s: %s not indexed yet (%s); retrying in %.0f s",
                          self.camera.id, closed.relpath, e, RESEAL_S)  # fmt: skip
                self._disk_low()
                return False
            log.error("%s: %s not indexed (%s); the start-up repair will index it",
                      self.camera.id, closed.relpath, e)  # fmt: skip
            return True
        except Exception:  # noqa: BLE001 - later segments must still be sealed
            log.exception("%s: sealing %s failed", self.camera.id, closed.relpath)
            return True
        self._last_indexed_end = segment.end
        self.segment_listeners.notify(segment)
        return True
