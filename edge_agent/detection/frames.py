"""Frame source: decodes a camera's sub stream at a few fps in its own thread, drop-oldest."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from edge_agent.restart_limiter import RestartLimiter

log = logging.getLogger(__name__)

# A stream that has delivered frames this long counts as healthy again (back-off resets).
HEALTHY_AFTER_S = 60.0


@dataclass(frozen=True)
class Frame:
    """A decoded, downscaled frame and when it was captured (UTC epoch seconds)."""

    ts: float
    image: NDArray[np.uint8]  # BGR, HxWx3
    seq: int


class DropOldestQueue:
    """A bounded hand-over between threads: a full queue drops its oldest item, counted."""

    def __init__(self, maxsize: int) -> None:
        self._items: collections.deque[Frame] = collections.deque()
        self._maxsize = maxsize
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: Frame) -> None:
        """Add an item without ever blocking the producer."""
        with self._cond:
            if len(self._items) >= self._maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()

    def get(self, timeout: float) -> Frame | None:
        """The oldest item, or None after `timeout` seconds without one."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class StreamClock:
    """Maps stream seconds to UTC: offset = the least (arrival - stream time) seen.

    A frame cannot arrive before it was captured, so the smallest lag is the best estimate
    and a burst of buffered frames at connect time cannot push times into the future. A
    stream clock that jumps (camera reboot) by more than `jump_s` resets the mapping.
    """

    def __init__(self, jump_s: float = 5.0) -> None:
        self.jump_s = jump_s
        self.offset: float | None = None

    def wall(self, stream_s: float, arrival: float) -> float:
        """UTC epoch seconds of a frame at `stream_s` that arrived at `arrival`."""
        lag = arrival - stream_s
        if self.offset is None or lag < self.offset or lag - self.offset > self.jump_s:
            self.offset = lag
        return stream_s + self.offset


def sample_frames(
    container: Any, fps: float, width: int, clock: Callable[[float], float]
) -> Iterator[Frame]:
    """Decode the first video stream; yield at most `fps` frames a second, `width` wide.

    Every frame must be decoded (inter prediction), but only the sampled ones are scaled
    and converted, which is where most of the per-frame cost lies.
    """
    stream = container.streams.video[0]
    stream.thread_count = 1  # leave the other cores to the recorder and the detector
    interval = 1.0 / fps
    due: float | None = None
    seq = 0
    for frame in container.decode(stream):
        if frame.pts is None or frame.time_base is None:
            continue
        stream_s = float(frame.pts * frame.time_base)
        if due is not None and stream_s < due and due - stream_s < 10 * interval:
            continue
        due = stream_s + interval
        height = max(2, round(frame.height * width / frame.width / 2) * 2)
        image = frame.to_ndarray(width=width, height=height, format="bgr24")
        seq += 1
        yield Frame(clock(stream_s), image, seq)


class FrameSource:
    """Reads one camera in its own thread and feeds a DropOldestQueue.

    `urls` are tried in order (sub stream first, then the main stream); a failed or
    finished stream is reopened with back-off. Counters: decoded, dropped, reconnects.
    """

    def __init__(
        self,
        name: str,
        urls: Sequence[str],
        queue: DropOldestQueue,
        fps: float,
        width: int,
        limiter: RestartLimiter,
        open_options: dict[str, str] | None = None,
        timeouts: tuple[float, float] = (10.0, 10.0),
    ) -> None:
        self.name = name
        self.urls = list(urls)
        self.queue = queue
        self.fps = fps
        self.width = width
        self.limiter = limiter
        self.open_options = open_options or {}
        self.timeouts = timeouts
        self.frames = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.connected_url: int | None = None  # index into urls of the stream being read
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the reading thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading (the thread notices within the stream's read timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        choice = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._read(choice)
                self.last_error = "stream ended"
            except (av.FFmpegError, OSError, ValueError, IndexError) as e:
                self.last_error = f"{type(e).__name__}: {e}"
                log.warning("%s: stream %d: %s", self.name, choice, self.last_error)
            self.connected_url = None
            if self._stop.is_set():
                break
            if time.monotonic() - started > HEALTHY_AFTER_S:
                self.limiter.reset()
            else:
                # A stream that fails at once is not usable: try the next one (main stream).
                choice = (choice + 1) % len(self.urls)
            self.reconnects += 1
            self._stop.wait(self.limiter.next_delay(time.monotonic()))

    def _read(self, choice: int) -> None:
        clock = StreamClock()
        with av.open(
            self.urls[choice], options=self.open_options, timeout=self.timeouts
        ) as container:
            if not container.streams.video:
                raise ValueError("the stream has no video track")
            self.connected_url = choice
            frames = sample_frames(
                container, self.fps, self.width, lambda s: clock.wall(s, time.time())
            )
            for frame in frames:
                if self._stop.is_set():
                    return
                self.frames += 1
                self.queue.put(frame)
