"""One fragmented-MP4 segment file: packet copy in, sealed (fsync, SHA-256) facts out."""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream

from edge_agent.recording.index import SegmentInfo
from edge_agent.recording.paths import segment_relpath
from edge_agent.retention.files import DiskUsageProbe
from fsv_common.digest import file_sha256

log = logging.getLogger(__name__)

# Video codecs a segment may hold, with the MP4 sample entry each needs. HEVC must be
# tagged hvc1 (parameter sets in the sample entry), which browsers and QuickTime require.
VIDEO_TAGS = {"h264": "avc1", "hevc": "hvc1"}

# empty_moov: the header is complete before the first packet, so a file cut short by a
# power failure still plays up to its last fragment. frag_keyframe starts a fragment at
# every keyframe and frag_duration within a GOP: the muxer holds a fragment until it is
# finished, so a crash (kill -9) loses at most FRAGMENT_US plus a frame of what the camera
# had sent, not the GOP under way. flush_packets hands each finished fragment to the OS at
# once instead of keeping its tail in the 32 KiB I/O buffer. Each fragment costs a header
# of about 100 bytes (0.4 kB/s, 0.2 % of a 2 Mbit/s stream) and one write.
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
FRAGMENT_US = 250_000
# AC-3 and E-AC-3 sample entries carry facts (bit stream info) read from the first audio
# packet, so the header cannot be written before it: the muxer refuses an empty moov
# ("Cannot write moov atom before AC3 packets. Set the delay_moov flag"). delay_moov writes
# the header with the first fragment instead; a crash in that first GOP loses it.
DELAY_MOOV_AUDIO = frozenset({"ac3", "eac3"})
# The exact UTC start is kept in the header's comment tag, so the start-up repair can place
# a file cut short by a crash to the microsecond (its name has one-second resolution).
START_TAG = "fsv-start="
# Marks a start that was still an estimate when the header was written: a connection's first
# segment is placed at close, once its packets show how late a burst at connect arrived.
ESTIMATE_MARK = "~"
# While such a segment is written, the recorder keeps its latest estimate of the start in
# this extended attribute of the file, for the start-up repair after a crash.
START_XATTR = "user.fsv.start"
# The muxer hands whole fragments over (flush_packets): a buffer this size passes most of
# them in one write, one Python call each.
WRITE_BUFFER = 1 << 20


@functools.lru_cache(maxsize=32)
def mp4_accepts(codec_name: str) -> bool:
    """Whether the MP4 muxer can store this codec (G.711 PCMA/PCMU, for one, it cannot)."""
    with av.open(io.BytesIO(), "w", format="mp4") as probe:
        return codec_name in probe.supported_codecs


def audio_codec_name(audio: AudioStream) -> str:
    """The codec's own name ("mp3"), not its decoder's ("mp3float")."""
    return audio.codec_context.codec.canonical_name


def movflags(audio_codec: str | None) -> str:
    """The movflags of a segment holding `audio_codec` (None: video only)."""
    return MOVFLAGS + "+delay_moov" if audio_codec in DELAY_MOOV_AUDIO else MOVFLAGS


def start_tag(start: float, estimated: bool) -> str:
    """The header's comment tag holding a segment's start."""
    return f"{START_TAG}{ESTIMATE_MARK if estimated else ''}{start:.6f}"


def start_of(comment: str | None) -> tuple[float | None, bool]:
    """The start recorded in a segment header's comment tag (None if none), and whether it
    was an estimate when written."""
    if not comment or not comment.startswith(START_TAG):
        return None, False
    value = comment[len(START_TAG) :]
    estimated = value.startswith(ESTIMATE_MARK)
    try:
        return float(value.removeprefix(ESTIMATE_MARK)), estimated
    except ValueError:
        return None, False


def noted_start(path: Path) -> float | None:
    """The start estimate the recorder kept on a file (START_XATTR), if any."""
    try:
        return float(os.getxattr(path, START_XATTR))
    except (OSError, ValueError):
        return None


class SpaceGuard:
    """Keeps the last `reserved_bytes` of the disk free of video, for the index and outbox.

    A segment write that would start inside the reserve fails with ENOSPC, as a full disk
    would, so the recorder wakes the cleaner and records a gap; the index can still take
    the rows of what was written, and the outbox its messages. The reserve is never more
    than a tenth of the disk (a small test disk must still take video).
    """

    def __init__(
        self, path: Path, reserved_bytes: int, disk_usage: DiskUsageProbe = shutil.disk_usage
    ) -> None:
        self.path = path
        self.reserved_bytes = reserved_bytes
        self.disk_usage = disk_usage

    def check(self) -> None:
        """Raise OSError(ENOSPC) when free space is inside the reserve."""
        if self.reserved_bytes <= 0:
            return
        try:
            usage = self.disk_usage(self.path)
        except OSError:
            return  # the write itself will say what is wrong
        reserve = min(self.reserved_bytes, usage.total // 10)
        if usage.free < reserve:
            raise OSError(
                errno.ENOSPC,
                f"No space left for video (the last {reserve} bytes are kept "
                "for the index and outbox)",
            )


class HashingWriter:
    """The muxer's output file: hashes every byte on its way to the disk (no second read).

    It has no `seek`, so the muxer treats it as a stream and never rewrites what was
    hashed (fragmented MP4 needs no seeking). Writes go straight to the file descriptor:
    a finished fragment reaches the OS at once, as a power cut must find it there. With a
    `guard`, each write (about one per fragment) first checks the disk's reserve.
    """

    def __init__(self, path: Path, guard: SpaceGuard | None = None) -> None:
        self._guard = guard
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        """Write all of `data` (PyAV hands over one buffer at a time)."""
        if self._guard is not None:
            self._guard.check()
        size = len(data)
        written = os.write(self._fd, data)
        if written == size:  # a regular file takes it all at once, but for a signal
            self._sha.update(data)
        else:
            view = memoryview(data)
            self._sha.update(view[:written])
            view = view[written:]
            while view:
                written = os.write(self._fd, view)
                self._sha.update(view[:written])
                view = view[written:]
        self.size += size
        return size

    def flush(self) -> None:
        """Nothing is buffered here."""

    def close(self) -> None:
        """Close the file descriptor (safe to call twice)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def hexdigest(self) -> str:
        """SHA-256 of everything written so far."""
        return self._sha.hexdigest()


def delete_empty(path: Path, camera: str, relpath: str) -> None:
    """Delete a file that holds no video frame (it must never be indexed); a failure is logged."""
    try:
        path.unlink(missing_ok=True)
    except OSError as e:
        log.warning("%s: cannot delete the empty file %s: %s", camera, relpath, e.strerror)


def free_relpath(storage: Path, camera: str, start: float) -> str:
    """The segment path for `start`, moved on by whole seconds if that name is taken.

    Names have one-second resolution; two segments can begin in the same second after a
    reconnect or a clock jump, and an existing file must never be overwritten.
    """
    second = 0
    while True:
        rel = segment_relpath(camera, start + second)
        if not (storage / rel).exists():
            return rel
        second += 1


def rename_for_start(storage: Path, relpath: str, camera: str, start: float) -> str:
    """Move a closed segment file to the name of its final start; returns the path it has.

    The first segment of a connection is named when its first packet arrives, but its start
    is placed at close (a burst at connect shows how late packets came), so its name and its
    index row could disagree by a second.
    """
    if relpath == segment_relpath(camera, start):
        return relpath
    target = free_relpath(storage, camera, start)
    (storage / target).parent.mkdir(parents=True, exist_ok=True)
    os.rename(storage / relpath, storage / target)
    return target


class NoFrameError(Exception):
    """A damaged segment file holds no playable video frame: it must never be indexed."""


@dataclass(frozen=True)
class ClosedSegment:
    """A segment file whose muxer is closed, not yet synced, hashed or indexed."""

    camera: str
    relpath: str
    path: Path
    start: float
    end: float
    codec: str
    width: int
    height: int
    audio_codec: str | None
    damaged: bool = False  # closed after a write error: the end is read back from the file
    sha256: str | None = None  # hashed while written; None: hash the file when sealing

    def seal(self) -> SegmentInfo:
        """Flush the file to disk and take its hash: the facts the index chains.

        Raises NoFrameError for a damaged file that holds no playable frame.
        """
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        end = self.end
        if self.damaged:
            from edge_agent.recording.probe import probe_segment  # probe imports this module

            # After a failed write only what reached the disk counts: a file whose first
            # fragment never got there holds a header alone, never a 0-second segment.
            probe = probe_segment(self.path)
            if probe.problem is not None or probe.duration <= 0:
                raise NoFrameError(probe.problem or "no frame with a duration")
            end = min(end, self.start + probe.duration)
        return SegmentInfo(
            camera=self.camera,
            path=self.relpath,
            start=self.start,
            end=end,
            bytes=self.path.stat().st_size,
            codec=self.codec,
            width=self.width,
            height=self.height,
            audio_codec=self.audio_codec,
            sha256=self.sha256 or file_sha256(self.path),
        )


class SegmentFile:
    """A segment being written: an fMP4 muxer with a copy of the camera's streams.

    Packets are muxed by setting `packet.stream` to `video_out` or `audio_out` and calling
    `container.mux_one(packet)`; the session does that inline to keep per-packet work small.
    """

    def __init__(
        self,
        storage: Path,
        camera: str,
        start: float,
        video: VideoStream,
        audio: AudioStream | None,
        guard: SpaceGuard | None = None,
        estimated_start: bool = False,
    ) -> None:
        if guard is not None:
            guard.check()  # no new file inside the reserve
        self.camera = camera
        self.start = start
        self.storage = storage
        self.relpath = free_relpath(storage, camera, start)
        self.path = storage / self.relpath
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.codec = video.codec_context.name
        self.width = video.codec_context.width
        self.height = video.codec_context.height
        audio_name = audio_codec_name(audio) if audio is not None else None
        self._file = HashingWriter(self.path, guard)
        try:
            self.container: OutputContainer = av.open(
                self._file,
                "w",
                format="mp4",
                buffer_size=WRITE_BUFFER,
                options={
                    "movflags": movflags(audio_name),
                    "frag_duration": str(FRAGMENT_US),
                    "flush_packets": "1",
                },
            )
        except BaseException:
            self._file.close()
            self.path.unlink(missing_ok=True)
            raise
        self.estimated_start = estimated_start
        self._noted: float | None = None
        self.container.metadata["comment"] = start_tag(start, estimated_start)
        try:
            self.video_out: VideoStream = self.container.add_stream_from_template(video)
            self.video_out.codec_tag = VIDEO_TAGS[self.codec]
            self.audio_out: AudioStream | None = None
            self.audio_codec: str | None = None
            if audio is not None:
                self.audio_out = self.container.add_stream_from_template(audio)
                self.audio_codec = audio_name
        except BaseException:
            self.discard()
            raise

    def note_start(self, start: float) -> None:
        """Keep a better estimate of an estimated start on the file (START_XATTR), so that a
        crash before close does not leave only the late first guess. Best effort: a file
        system without user extended attributes keeps the header's estimate."""
        if self._noted is not None and start >= self._noted - 0.001:
            return
        self._noted = start
        try:
            os.setxattr(self.path, START_XATTR, f"{start:.6f}".encode())
        except OSError:
            pass

    def close(self, end: float, start: float | None = None) -> ClosedSegment:
        """Write the last fragment and close the file; `start` corrects the provisional one."""
        try:
            self.container.close()
        finally:
            self._file.close()
        return self._facts(end, start)

    def abandon(self, end: float, start: float | None = None) -> ClosedSegment:
        """Close after a write error: the fragments that reached the disk still make a segment."""
        try:
            self.container.close()
        except (av.FFmpegError, OSError) as e:
            log.warning("%s: closing %s after an error failed too: %s", self.camera,
                        self.relpath, e.strerror or e)  # fmt: skip
        finally:
            self._file.close()
        return self._facts(end, start, damaged=True)

    def discard(self) -> None:
        """Close and delete a file that holds no video frame (it must never be indexed)."""
        try:
            self.container.close()
        except (av.FFmpegError, OSError):
            pass  # a header the muxer refused cannot be finished either; the file goes
        finally:
            self._file.close()
            delete_empty(self.path, self.camera, self.relpath)

    def _facts(self, end: float, start: float | None, damaged: bool = False) -> ClosedSegment:
        storage = self.storage
        relpath = self.relpath
        if start is not None and not damaged:
            try:
                relpath = rename_for_start(storage, relpath, self.camera, start)
            except OSError as e:
                log.warning("%s: cannot rename %s to its start: %s", self.camera, relpath,
                            e.strerror)  # fmt: skip
        return ClosedSegment(
            camera=self.camera,
            relpath=relpath,
            path=storage / relpath,
            start=self.start if start is None else start,
            end=end,
            codec=self.codec,
            width=self.width,
            height=self.height,
            audio_codec=self.audio_codec,
            damaged=damaged,
            # A damaged file's tail may differ from what the muxer was handed: read it back.
            sha256=None if damaged else self._file.hexdigest(),
        )
