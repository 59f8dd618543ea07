"""One connection to a camera: read its main stream and cut it into segment files at keyframes."""

from __future__ import annotations

import errno
import logging
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Literal, Protocol

import av
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.stream import VideoStream

from edge_agent.errors import SegmentWriteError
from edge_agent.recording.events import ListenerSet, PacketEvent
from edge_agent.recording.segment_writer import (
    ClosedSegment,
    SegmentFile,
    SpaceGuard,
)
from edge_agent.recording.status import Counters, RateMeter
from edge_agent.recording.streams import write_failure
from edge_agent.recording.timeline import (
    DtsGuard,
    Stamp,
    Verdict,
    WallClock,
    cut_tick,
    segment_times,
)

log = logging.getLogger(__name__)

JUMP_S = 5.0  # a dts step larger than this either way is a clock jump, not jitter
CUT_TOLERANCE_S = 0.1  # RTP rounding: a keyframe this early still ends the segment
BREAK_GAP_S = 1.0  # a jump that leaves more than this uncovered is recorded as a gap


class SessionEvents(Protocol):
    """What a session tells its recorder."""

    def recording_started(self, start: float, keyframe_wait_s: float) -> None:
        """The first segment of this connection opened at UTC `start`: the camera is online.

        `keyframe_wait_s`: stream seconds from the connection's first video packet to the
        keyframe that opened the segment (the packets before it cannot start a file).
        """

    def segment_closed(self, closed: ClosedSegment, first_of_session: bool) -> None:
        """A segment file was closed; seal and index it."""

    def timeline_broken(self, previous_end: float, start: float, reason: str) -> None:
        """The stream's clock jumped and [previous_end, start) holds no video."""


class RecordingSession:
    """Demuxes one connection into segment files; one thread runs it, `stop()` may finish it.

    Every packet is handled under `lock`, so the recorder's `stop()` can close the current
    segment cleanly even while this thread is blocked in a read of a stalled camera.
    """

    def __init__(
        self,
        *,
        camera: str,
        storage: Path,
        segment_s: float,
        container: InputContainer,
        video: VideoStream,
        audio: AudioStream | None,
        events: SessionEvents,
        counters: Counters,
        meter: RateMeter,
        packet_listeners: ListenerSet[PacketEvent],
        previous_end: float | None,
        dropped_audio: set[str] | None = None,
        guard: SpaceGuard | None = None,
    ) -> None:
        self.camera = camera
        self.lock = threading.Lock()
        self._storage = storage
        self._segment_s = segment_s
        self._container = container
        self._video = video
        self._audio = audio
        self._events = events
        self._counters = counters
        self._meter = meter
        self._listeners = packet_listeners
        self._previous_end = previous_end
        self._dropped_audio = dropped_audio if dropped_audio is not None else set()
        self._guard = guard
        self._has_video = False  # the open segment holds at least one video frame
        self._vtb = float(video.time_base or Fraction(1, 90000))
        self._atb = float(audio.time_base or Fraction(1, 8000)) if audio is not None else 1.0
        rate = video.average_rate or video.guessed_rate or 25
        frame_ticks = max(1, round(1 / (float(rate) * self._vtb)))
        self._vguard = DtsGuard(round(JUMP_S / self._vtb), frame_ticks)
        audio_frame = (audio.codec_context.frame_size or 1024) if audio is not None else 1
        self._aguard = DtsGuard(round(JUMP_S / self._atb), audio_frame)
        self._clock = WallClock()
        self._segment: SegmentFile | None = None
        self._first_s = 0.0  # stream seconds at the start of the open segment
        self._end_dts = 0  # dts just after the last video packet written
        self._cut_at = 0  # dts from which a keyframe ends the open segment
        self._contiguous = False  # the open segment continues the previous one seamlessly
        self._started = False
        self._closed = False
        self._stopping = False
        self._pending: Packet[Stream] | None = None
        self._audio_errors = 0
        self._video_since: float | None = None  # monotonic time of the first frame written
        self._first_packet_s: float | None = None  # stream seconds of the first video packet
        self.audio_refused: str | None = None  # why the muxer refused the audio, if it did
        self.segments_closed = 0
        self._repairs_counted = 0

    # --- the read loop ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> str:
        """Record until the stream ends ("stream ended") or `stop` is set ("stopped").

        Read errors propagate as PyAV errors; write errors as SegmentWriteError.
        """
        video_index = self._video.index
        streams = [self._video] if self._audio is None else [self._video, self._audio]
        if stop.is_set():
            return "stopped"
        # The video fast path is inlined here, with what it needs held in locals: it runs for
        # most packets (not a keyframe, a file open, a dts a little after the last), each
        # after a wait for the network, so with the caches cold every call and attribute
        # lookup costs. Everything else takes the checked path.
        lock = self.lock
        guard = self._vguard
        jump = guard.jump_ticks
        default_duration = guard.default_duration
        listeners = self._listeners
        counters = self._counters
        for packet in self._container.demux(streams):
            # A plain attribute, not stop.is_set(): this runs for every packet.
            if self._stopping:
                return "stopped"
            with lock:
                if self._closed:
                    return "stopped"
                try:
                    if packet.stream_index != video_index:
                        self._on_audio(packet)
                        continue
                    dts = packet.dts
                    last = guard.last
                    segment = self._segment
                    if (
                        segment is None
                        or dts is None
                        or last is None
                        or not last < dts <= last + jump
                        or packet.is_keyframe
                    ):
                        self._video_checked(packet)
                        continue
                    guard.last = dts
                    pts = packet.pts
                    if pts is None or pts < dts:
                        packet.pts = dts
                    if listeners.callbacks:
                        listeners.notify(self._event(packet, "video", dts * self._vtb))
                    self._end_dts = dts + (packet.duration or default_duration)
                    counters.video_packets += 1
                    counters.bytes += packet.size
                    packet.stream = segment.video_out
                    segment.container.mux_one(packet)
                except (av.FFmpegError, OSError) as e:
                    what = self._blame(e)
                    self._abandon()
                    raise SegmentWriteError(write_failure(e, what)) from e
        return "stream ended"

    def _blame(self, error: av.FFmpegError | OSError) -> str:
        """Which track a write error is about ("audio ac3", "video h264").

        A muxer error in a connection's first segment that has audio is taken as the
        audio's fault (a delayed header can fail at the first fragment): the codec is then
        dropped, so the next connection records video only instead of failing again.
        """
        segment = self._segment
        codec = segment.audio_codec if segment is not None else None
        if (
            codec is not None
            and isinstance(error, av.FFmpegError)
            and error.errno != errno.ENOSPC
            and self.segments_closed == 0
        ):
            self._dropped_audio.add(codec)
            return f"audio {codec}"
        return f"video {self._video.codec_context.name}"

    def recorded(self) -> float | None:
        """Seconds since this connection's first frame reached a file (None: not one did)."""
        since = self._video_since
        return None if since is None else time.monotonic() - since

    def request_stop(self) -> None:
        """Make `run()` return before its next packet (call after setting its stop event)."""
        self._stopping = True

    def finish(self) -> None:
        """Close the open segment and refuse further packets; safe to call twice."""
        with self.lock:
            self._closed = True
            self._count_repairs()
            if self._segment is not None:
                self._close_segment(self._end_dts * self._vtb)

    # --- per packet ------------------------------------------------------------------------

    def _video_checked(self, packet: Packet[Stream]) -> None:
        if not packet.size:
            return  # the demuxer's end-of-stream flush packet
        verdict, stamp = self._vguard.check(packet.dts, packet.pts, packet.duration)
        if verdict is Verdict.DROP:
            if self._segment is not None:
                self._counters.dropped += 1
            elif packet.is_keyframe:
                self._pending = packet  # stamped once the next packet shows the clock
            else:
                self._counters.skipped += 1  # no file yet: it waits for a keyframe anyway
            return
        if verdict is Verdict.JUMP:
            self._jump(stamp)
        elif self._pending is not None:
            pending, self._pending = self._pending, None
            dts = stamp.dts - (pending.duration or self._vguard.default_duration)
            self._write_video(pending, Stamp(dts, dts))
        self._write_video(packet, stamp)

    def _write_video(self, packet: Packet[Stream], stamp: Stamp) -> None:
        ts = stamp.dts * self._vtb
        keyframe = packet.is_keyframe
        if self._first_packet_s is None:
            self._first_packet_s = ts  # the stream began playing here
        if keyframe or self.segments_closed == 0:
            # Keyframes suffice to follow drift; the first segment's packets also show how
            # late a burst delivered at connect time arrived.
            self._clock.observe(ts, time.time())
        segment = self._segment
        if segment is None or (keyframe and stamp.dts >= self._cut_at):
            if segment is None and not keyframe:
                self._counters.skipped += 1
                return
            if segment is not None:
                self._close_segment(ts)
            self._open(stamp.dts, ts)
            self._first_frame(packet, stamp, ts)
            return
        c = self._counters
        if keyframe:
            self._meter.sample(time.monotonic(), c.video_packets, c.bytes)
            if segment.estimated_start:  # the clock knows better now than at the first frame
                start = self._clock.wall(self._first_s)
                previous = self._previous_end
                segment.note_start(start if previous is None else max(start, previous))
        packet.dts = stamp.dts
        packet.pts = stamp.pts
        if self._listeners.callbacks:
            self._listeners.notify(self._event(packet, "video", ts))
        self._end_dts = stamp.dts + (packet.duration or self._vguard.default_duration)
        c.video_packets += 1
        c.bytes += packet.size
        packet.stream = segment.video_out
        segment.container.mux_one(packet)

    def _first_frame(self, packet: Packet[Stream], stamp: Stamp, ts: float) -> None:
        """Write a new segment's keyframe; audio the muxer refuses costs the audio, not video.

        The MP4 header is written with the first packet, so this is where a muxer that
        cannot describe the audio track says so. The camera counts as recording only once a
        frame is in a file.
        """
        segment = self._segment
        assert segment is not None
        packet.dts = stamp.dts
        packet.pts = stamp.pts
        packet.stream = segment.video_out
        try:
            segment.container.mux_one(packet)
        except av.FFmpegError as e:
            if segment.audio_codec is None:
                raise
            segment = self._drop_audio(segment, e)
            packet.stream = segment.video_out
            segment.container.mux_one(packet)
        self._has_video = True
        if self._listeners.callbacks:
            self._listeners.notify(self._event(packet, "video", ts))
        self._end_dts = stamp.dts + (packet.duration or self._vguard.default_duration)
        c = self._counters
        c.video_packets += 1
        c.bytes += packet.size
        self._meter.sample(time.monotonic(), c.video_packets, c.bytes)
        if not self._started:
            self._started = True
            self._video_since = time.monotonic()
            first = self._first_packet_s
            waited = 0.0 if first is None else max(0.0, ts - first)
            self._events.recording_started(segment.start, waited)

    def _drop_audio(self, segment: SegmentFile, error: av.FFmpegError) -> SegmentFile:
        """Reopen the segment without its audio track, which the muxer refused."""
        codec = segment.audio_codec
        self.audio_refused = f"audio {codec}: the MP4 muxer refused it ({error.strerror or error})"
        log.warning("%s: %s; recording video only", self.camera, self.audio_refused)
        if codec is not None:
            self._dropped_audio.add(codec)
        segment.discard()
        self._audio = None
        self._segment = SegmentFile(
            self._storage, self.camera, segment.start, self._video, None, self._guard,
            estimated_start=segment.estimated_start,
        )  # fmt: skip
        return self._segment

    def _on_audio(self, packet: Packet[Stream]) -> None:
        segment = self._segment
        if segment is None or segment.audio_out is None:
            return  # before the first keyframe there is no file to put audio in
        dts = packet.dts
        guard = self._aguard
        last = guard.last
        if dts is None or last is None or not last < dts <= last + guard.jump_ticks:
            self._audio_checked(packet, segment)
            return
        guard.last = dts
        pts = packet.pts
        if pts is None or pts < dts:
            packet.pts = dts
        self._write_audio(packet, segment)

    def _audio_checked(self, packet: Packet[Stream], segment: SegmentFile) -> None:
        if not packet.size:
            return
        verdict, stamp = self._aguard.check(packet.dts, packet.pts, packet.duration)
        if verdict is not Verdict.WRITE:
            self._counters.dropped += 1
            return
        packet.dts = stamp.dts
        packet.pts = stamp.pts
        self._write_audio(packet, segment)

    def _write_audio(self, packet: Packet[Stream], segment: SegmentFile) -> None:
        if self._listeners.callbacks and self._clock.offset is not None:
            self._listeners.notify(self._event(packet, "audio", (packet.dts or 0) * self._atb))
        counters = self._counters
        counters.audio_packets += 1
        counters.bytes += packet.size
        assert segment.audio_out is not None
        packet.stream = segment.audio_out
        try:
            segment.container.mux_one(packet)
        except av.FFmpegError as e:
            if e.errno == errno.ENOSPC:
                raise
            # One bad audio packet must not end the connection (and cost the video).
            counters.dropped += 1
            if not self._audio_errors:
                log.warning("%s: audio %s: %s; packet dropped", self.camera,
                            segment.audio_codec, e.strerror)  # fmt: skip
            self._audio_errors += 1

    def _event(
        self, packet: Packet[Stream], kind: Literal["video", "audio"], ts: float
    ) -> PacketEvent:
        stream = self._video if kind == "video" else self._audio
        assert stream is not None
        ctx = stream.codec_context
        return PacketEvent(
            camera=self.camera,
            kind=kind,
            codec=ctx.name,
            data=bytes(packet),
            pts=packet.pts or 0,
            dts=packet.dts or 0,
            time_base=stream.time_base or Fraction(1, 90000),
            wall=self._clock.wall(ts),
            keyframe=packet.is_keyframe,
            extradata=ctx.extradata,
        )

    # --- segments --------------------------------------------------------------------------

    def _open(self, dts: int, ts: float) -> SegmentFile:
        previous_end = self._previous_end
        if self._contiguous and previous_end is not None:
            start = previous_end
        else:
            start = self._clock.wall(ts)
            if previous_end is not None:
                if self._started and start - previous_end > BREAK_GAP_S:
                    self._events.timeline_broken(previous_end, start, "stream clock jumped")
                start = max(start, previous_end)
        segment = SegmentFile(
            self._storage, self.camera, start, self._video, self._audio, self._guard,
            estimated_start=not (self._contiguous and previous_end is not None),
        )  # fmt: skip
        self._segment = segment
        self._has_video = False
        self._first_s = ts
        self._cut_at = cut_tick(dts, self._segment_s, self._vtb, CUT_TOLERANCE_S)
        self._aguard.last = None  # a new file: audio starts its own strictly rising dts
        return segment

    def _close_segment(self, end_s: float, failed: bool = False) -> None:
        """Close the open file (`failed`: after a write error) and hand it on for sealing."""
        segment = self._segment
        assert segment is not None
        self._segment = None
        if not self._has_video:
            # Nothing but a header (the first write failed): never a 0-second segment.
            log.warning("%s: %s holds no video frame; deleted", self.camera, segment.relpath)
            segment.discard()
            return
        self._clock.settle()
        first = self.segments_closed == 0
        previous = self._previous_end
        # The first segment's start is placed only now: packets after the first may show
        # that it arrived late (a buffered burst at connect), which moves the start earlier.
        times = segment_times(self._first_s, end_s, self._clock, previous, self._contiguous)
        if failed:
            closed = segment.abandon(end=times.end, start=times.start)
        else:
            try:
                closed = segment.close(end=times.end, start=times.start)
            except (av.FFmpegError, OSError) as e:
                log.error("%s: closing %s failed: %s", self.camera, segment.relpath, e.strerror)
                closed = segment.abandon(end=times.end, start=times.start)
        self._count_repairs()
        self._previous_end = times.end
        self._contiguous = True
        self.segments_closed += 1
        self._counters.segments += 1
        self._events.segment_closed(closed, first)

    def _jump(self, stamp: Stamp) -> None:
        log.warning("%s: stream timestamps jumped; starting a new segment", self.camera)
        if self._segment is not None:
            self._close_segment(self._end_dts * self._vtb)
        if self._pending is not None:
            self._pending = None
            self._counters.dropped += 1
        self._contiguous = False
        self._clock.reset()
        if not self._started:
            self._first_packet_s = None  # the old clock's seconds: the wait counts anew
        self._vguard.restart(stamp)
        self._aguard.last = None

    def _count_repairs(self) -> None:
        repaired = self._vguard.repaired + self._aguard.repaired
        self._counters.repaired += repaired - self._repairs_counted
        self._repairs_counted = repaired

    def _abandon(self) -> None:
        if self._segment is not None:
            self._close_segment(self._end_dts * self._vtb, failed=True)
