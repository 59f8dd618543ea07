"""Reads a camera's sub stream once for the agent: demux only (no decoding), into a LiveTap.

The recorder reads main streams; live view and detection read the sub stream (~0.5 Mbit/s)
through this one RTSP session (cameras limit their sessions, and each costs LAN uplink).
Reading it all the time keeps the tap's GOP cache warm, so a viewer's first frame comes at
once; the cost is packet copies, no decoding. A camera that is not recorded and has no sub
stream gets a reader on its main stream instead, for detection.
"""

from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction

import av

from edge_agent.config import CameraConfig, RecorderConfig
from edge_agent.credentials import CredentialStore, with_credential
from edge_agent.errors import CredentialError
from edge_agent.recording.events import PacketEvent
from edge_agent.recording.recorder import failure_reason
from edge_agent.recording.streams import open_camera
from edge_agent.recording.timeline import DtsGuard, Verdict, WallClock
from edge_agent.restart_limiter import RestartLimiter
from edge_agent.uplink.tap import LiveTap

log = logging.getLogger(__name__)

HEALTHY_AFTER_S = 60.0  # a connection that lasted this long resets the back-off
JUMP_S = 5.0


class PacketStamper:
    """Turns demuxed packets into PacketEvents: dts repaired, capture time in UTC."""

    def __init__(
        self,
        camera: str,
        codec: str,
        time_base: Fraction,
        extradata: bytes | None,
        frame_ticks: int,
    ) -> None:
        self.camera = camera
        self.codec = codec
        self.time_base = time_base
        self.extradata = extradata
        self._guard = DtsGuard(round(JUMP_S / time_base), frame_ticks)
        self._clock = WallClock()
        self._pending: tuple[bytes, bool, int | None] | None = None

    def stamp(
        self,
        data: bytes,
        dts: int | None,
        pts: int | None,
        duration: int | None,
        keyframe: bool,
        arrival: float,
    ) -> list[PacketEvent]:
        """Events for one packet (none while timestamps are unknown, two after a held one)."""
        verdict, stamp = self._guard.check(dts, pts, duration)
        if verdict is Verdict.DROP:
            if keyframe:
                self._pending = (data, keyframe, duration)  # stamped by the next packet
            return []
        if verdict is Verdict.JUMP:
            self._clock.reset()
            self._guard.restart(stamp)
        events: list[PacketEvent] = []
        seconds = stamp.dts * float(self.time_base)
        self._clock.observe(seconds, arrival)
        if self._pending is not None:
            held, held_key, held_duration = self._pending
            self._pending = None
            held_dts = stamp.dts - (held_duration or self._guard.default_duration)
            events.append(self._event(held, held_dts, held_dts, held_key))
        events.append(self._event(data, stamp.dts, stamp.pts, keyframe))
        return events

    def _event(self, data: bytes, dts: int, pts: int, keyframe: bool) -> PacketEvent:
        return PacketEvent(
            camera=self.camera,
            kind="video",
            codec=self.codec,
            data=data,
            pts=pts,
            dts=dts,
            time_base=self.time_base,
            wall=self._clock.wall(dts * float(self.time_base)),
            keyframe=keyframe,
            extradata=self.extradata,
        )


class SubStreamReader:
    """Component reading one camera stream (`tap.stream`, the sub stream as a rule) into its
    tap on thread `live-<id>` (`live-<id>-main` for a main stream)."""

    def __init__(
        self,
        camera: CameraConfig,
        recorder: RecorderConfig,
        credentials: CredentialStore,
        tap: LiveTap,
    ) -> None:
        url = camera.sub_url if tap.stream == "sub" else camera.main_url
        if url is None:
            raise ValueError(f"camera {camera.id} has no {tap.stream} stream URL")
        self.url = url
        self.camera = camera
        self.recorder = recorder
        self.credentials = credentials
        self.tap = tap
        suffix = "" if tap.stream == "sub" else f"-{tap.stream}"
        self.name = f"live {camera.id}{suffix}"
        self._thread_name = f"live-{camera.id}{suffix}"
        self.reason = "starting"
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start reading."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reading (a blocked read ends within the read timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.recorder.read_timeout_s + 1.0)
            if self._thread.is_alive():
                log.warning("%s: live reader did not stop in time", self.camera.id)
            self._thread = None

    def _run(self) -> None:
        rc = self.recorder
        limiter = RestartLimiter(
            rc.backoff_initial_s, rc.backoff_max_s, rc.restart_limit, rc.restart_window_s
        )
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._read()
                self.reason = "stream ended"
            except CredentialError as e:
                self.reason = str(e)
            except (av.FFmpegError, OSError, ValueError) as e:
                self.reason = failure_reason(e, reading=self.tap.packets > 0)
            if self._stop.is_set():
                break
            log.info(
                "%s: %s stream: %s; reconnecting", self.camera.id, self.tap.stream, self.reason
            )
            if time.monotonic() - started > HEALTHY_AFTER_S:
                limiter.reset()
            self.reconnects += 1
            self._stop.wait(limiter.next_delay(time.monotonic()))

    def _read(self) -> None:
        name = self.camera.credential
        url = with_credential(self.url, self.credentials.get(name) if name else None)
        with open_camera(url, self.recorder) as container:
            if not container.streams.video:
                raise ValueError(f"the {self.tap.stream} stream has no video track")
            video = container.streams.video[0]
            ctx = video.codec_context
            time_base = video.time_base or Fraction(1, 90000)
            rate = video.average_rate or video.guessed_rate or 25
            stamper = PacketStamper(
                self.camera.id,
                ctx.name,
                time_base,
                ctx.extradata,
                max(1, round(1 / (float(rate) * float(time_base)))),
            )
            self.reason = "reading"
            for packet in container.demux(video):
                if self._stop.is_set():
                    return
                if not packet.size:
                    continue
                events = stamper.stamp(
                    bytes(packet),
                    packet.dts,
                    packet.pts,
                    packet.duration,
                    packet.is_keyframe,
                    time.time(),
                )
                for event in events:
                    self.tap.publish(event)
