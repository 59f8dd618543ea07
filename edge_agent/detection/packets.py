"""The packet hand-over from a stream reader to detection: bounded, drops whole GOPs."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

from edge_agent.recording.events import PacketEvent

# About 12 s of a 25 fps stream; a backlog beyond that is stale for detection anyway.
MAX_PACKETS = 300
MAX_BYTES = 16 << 20  # a few main-stream GOPs; the sub stream never comes near


@dataclass(frozen=True, slots=True)
class QueuedPacket:
    """A video packet and the UTC second its capture maps to (detection's own clock)."""

    event: PacketEvent
    wall: float


class GopQueue:
    """Packets from the reader's thread to the decoder's, never blocking the reader.

    A decoder needs every packet from a keyframe on, so a full queue drops its oldest GOP
    whole (from the head up to the next keyframe), and after a drop that leaves nothing to
    decode from, packets are refused until the next keyframe. Counters: `dropped` packets
    and `gops_dropped` (the decoder fell behind), `skipped` (waiting for a keyframe at start).
    """

    def __init__(self, max_packets: int = MAX_PACKETS, max_bytes: int = MAX_BYTES) -> None:
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self._items: collections.deque[QueuedPacket] = collections.deque()
        self._bytes = 0
        self._started = False  # a first keyframe came
        self._broken = False  # a drop cut the current GOP: wait for the next keyframe
        self._cond = threading.Condition()
        self.dropped = 0
        self.gops_dropped = 0
        self.skipped = 0

    def put(self, item: QueuedPacket) -> None:
        """Queue a packet; make room by dropping the oldest GOP when full."""
        size = len(item.event.data)
        with self._cond:
            if item.event.keyframe:
                self._started, self._broken = True, False
            elif not self._started:
                self.skipped += 1
                return
            elif self._broken:
                self.dropped += 1
                return
            while self._items and (
                len(self._items) >= self.max_packets or self._bytes + size > self.max_bytes
            ):
                self._drop_oldest_gop()
                if not self._items and not item.event.keyframe:
                    self._broken = True  # what is left of this GOP cannot be decoded
                    self.dropped += 1
                    return
            self._items.append(item)
            self._bytes += size
            self._cond.notify()

    def _drop_oldest_gop(self) -> None:
        """Drop from the head up to (not including) the next keyframe."""
        first = self._items.popleft()
        self._bytes -= len(first.event.data)
        count = 1
        while self._items and not self._items[0].event.keyframe:
            self._bytes -= len(self._items.popleft().event.data)
            count += 1
        self.dropped += count
        self.gops_dropped += 1

    def get(self, timeout: float) -> QueuedPacket | None:
        """The oldest packet, or None after `timeout` seconds without one."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if not self._items:
                return None
            item = self._items.popleft()
            self._bytes -= len(item.event.data)
            return item

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
