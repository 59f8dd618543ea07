"""A viewer's send buffer: bounded in bytes; a slow viewer skips to the next keyframe.

One slow phone must neither slow the other viewers of the same upstream nor make central's
memory grow: when its backlog passes the bound, the queued fragments are dropped and it
resumes at the next keyframe (a visible jump, the same for every player).
"""

from __future__ import annotations

from collections import deque

MAX_BUFFER_BYTES = 4 << 20  # about 8 s of a 4 Mbit/s main stream


class ViewerBuffer:
    """Frames (bytes) and control messages (str) waiting for one viewer's socket (pure)."""

    def __init__(self, max_bytes: int = MAX_BUFFER_BYTES) -> None:
        self.max_bytes = max_bytes
        self.dropped = 0  # media frames dropped for this viewer
        self.bytes = 0
        self._items: deque[bytes | str] = deque()
        self._skipping = False
        self._init: bytes | None = None  # the newest init, never dropped while queued

    def __len__(self) -> int:
        return len(self._items)

    def control(self, text: str) -> None:
        """Queue a control message; these are tiny and never dropped."""
        self._items.append(text)

    def init(self, frame: bytes) -> None:
        """A new init segment: whatever media is queued belongs to the old timeline."""
        self._init = None
        self._drop_media()
        self._init = frame
        self._items.append(frame)
        self.bytes += len(frame)
        self._skipping = True  # the first fragment after an init must be a keyframe

    def media(self, frame: bytes, keyframe: bool) -> bool:
        """Queue a fragment; False if it was dropped (skipping or over the bound)."""
        if self._skipping:
            if not keyframe:
                self.dropped += 1
                return False
            self._skipping = False
        if self.bytes + len(frame) > self.max_bytes:
            self._drop_media()
            if not keyframe:
                self._skipping = True
                self.dropped += 1
                return False
        self._items.append(frame)
        self.bytes += len(frame)
        return True

    def take(self) -> list[bytes | str]:
        """Everything queued, oldest first."""
        items = list(self._items)
        self._items.clear()
        self._init = None
        self.bytes = 0
        return items

    def _drop_media(self) -> None:
        kept: deque[bytes | str] = deque()
        self.bytes = 0
        for item in self._items:
            if isinstance(item, str) or item is self._init:
                kept.append(item)
                self.bytes += len(item) if item is self._init else 0
            else:
                self.dropped += 1
        self._items = kept
