"""What "live" means, for the edge and for central alike.

An event is live while it is happening now, as opposed to one flushed from an outbox after
an outage. Both programs decide it from the event's `start` (stamped by the edge's clock),
but on different clocks, so there are two windows, defined here side by side:

- SEND_WINDOW_S: the edge sends an event's `phase: start` on the live lane
  (`camera/{id}/live`) when the message leaves at most this long after the event's start.
  Start and sending time are both read on the edge's clock, so no skew enters this choice.
- CENTRAL_WINDOW_S: central treats an event as live (ingest writes it before a backlog, the
  alert feed's live lane takes it, its pushes go first) when it started at most this long
  before central's clock. Central compares the edge's start with its own clock, so an edge
  clock running behind makes a live event look older: CLOCK_SKEW_S is the allowance for
  that (and for the time in transit), so whatever the edge sent live, central still takes
  as live. A clock further off only loses the priority, never the event.

The peek reads the encoded payload without a full parse (ingest looks at every message on
paho's thread, before decoding): the contract's encoder writes the top-level `phase` and
`start` before any nested object, and JSON escapes quotes inside strings, so the first match
is the top-level field. A payload that does not follow the encoder at worst gets or loses
the priority; it is validated in full later like any other.
"""

from __future__ import annotations

import re
from datetime import datetime

SEND_WINDOW_S = 60.0
CLOCK_SKEW_S = 60.0
CENTRAL_WINDOW_S = SEND_WINDOW_S + CLOCK_SKEW_S

PEEK_BYTES = 4096
_START = re.compile(rb'"start"\s*:\s*"([^"]{10,40})"')
_PHASE = re.compile(rb'"phase"\s*:\s*"([a-z]{1,10})"')


def peek_start(payload: bytes) -> float | None:
    """The event's `start` as a POSIX time from a cheap peek; None if there is none or it
    is not a time with a zone."""
    found = _START.search(payload[:PEEK_BYTES])
    if found is None:
        return None
    try:
        start = datetime.fromisoformat(found.group(1).decode().replace("Z", "+00:00"))
    except (ValueError, UnicodeDecodeError):
        return None
    return start.timestamp() if start.tzinfo is not None else None


def peek_phase(payload: bytes) -> str | None:
    """The event's `phase` ("start" or "end") from a cheap peek; None if there is none."""
    found = _PHASE.search(payload[:PEEK_BYTES])
    return found.group(1).decode() if found is not None else None


def started_within(payload: bytes, now: float, window_s: float) -> bool:
    """True if the encoded event started at most `window_s` before `now`."""
    start = peek_start(payload)
    return start is not None and now - start <= window_s


def send_live(payload: bytes, now: float) -> bool:
    """The edge's choice: an event's start phase leaving within SEND_WINDOW_S of its start."""
    return peek_phase(payload) == "start" and started_within(payload, now, SEND_WINDOW_S)


def arrived_live(payload: bytes, received_at: float) -> bool:
    """Central's view: an event (either phase) that started within CENTRAL_WINDOW_S of its
    arrival, on central's clock."""
    return started_within(payload, received_at, CENTRAL_WINDOW_S)


def live_since(now: float) -> float:
    """The earliest start of an event central still treats as live at `now`."""
    return now - CENTRAL_WINDOW_S
