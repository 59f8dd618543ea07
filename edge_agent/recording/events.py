"""Listener hooks of a recorder: packets for live view and detection, finished segments."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Generic, Literal, TypeVar

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PacketEvent:
    """A copy of one packet as it was received, before the muxer touched it.

    `pts`/`dts` are in `time_base` units of the camera's stream (after the recorder's dts
    repair); `wall` is the UTC epoch second the recorder maps it to. `extradata` carries the
    codec's parameter sets (SPS/PPS, AudioSpecificConfig) so a consumer can start a decoder
    or a muxer at any keyframe.
    """

    camera: str
    kind: Literal["video", "audio"]
    codec: str
    data: bytes
    pts: int
    dts: int
    time_base: Fraction
    wall: float
    keyframe: bool
    extradata: bytes | None


T = TypeVar("T")


class ListenerSet(Generic[T]):
    """Callbacks run on the recorder's thread; they must return at once (hand off to a queue).

    A callback that raises is logged (first failure with its traceback) and counted, and
    never stops the recording.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.callbacks: tuple[Callable[[T], None], ...] = ()  # replaced, never mutated
        self._lock = threading.Lock()
        self._failed: set[int] = set()
        self.errors = 0

    def add(self, callback: Callable[[T], None]) -> None:
        """Register a callback."""
        with self._lock:
            self.callbacks = (*self.callbacks, callback)

    def remove(self, callback: Callable[[T], None]) -> None:
        """Unregister a callback (no error if it was not registered)."""
        with self._lock:
            self.callbacks = tuple(c for c in self.callbacks if c is not callback)

    def notify(self, item: T) -> None:
        """Hand `item` to every callback."""
        for callback in self.callbacks:
            try:
                callback(item)
            except Exception:  # noqa: BLE001 - a consumer's bug must not stop the recording
                self.errors += 1
                if id(callback) not in self._failed:
                    self._failed.add(id(callback))
                    log.exception(
                        "%s listener %r failed (further failures only counted)", self.what, callback
                    )
