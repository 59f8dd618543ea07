"""Site archive policies and the pure decision "does the archive want this segment?".

- `evidence`: alert media only (today's behaviour; no continuous transfer);
- `sub`: the continuous sub stream: the edge's sub lanes (`<camera>--sub`, fsv_contract.lanes),
  which an edge records when this policy is in force (or its camera config says so);
- `main`: the continuous main stream, optionally only of some stations and only within
  daily time windows in the site's zone (e.g. key stations overnight, when the line is idle).
"""

from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from central.archive.settings import PolicyName
from fsv_contract.lanes import Lane
from fsv_contract.payloads import LEVEL_PATTERN

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class Window(BaseModel):
    """A daily window in the site's zone; `end` before `start` runs over midnight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(description="HH:MM", examples=["22:00"])
    end: str = Field(description="HH:MM", examples=["06:00"])

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("must be HH:MM (00:00 to 23:59)")
        return value

    def contains(self, moment: time) -> bool:
        """Whether a time of day falls inside the window."""
        start, end = time.fromisoformat(self.start), time.fromisoformat(self.end)
        if start == end:
            return True
        if start < end:
            return start <= moment < end
        return moment >= start or moment < end


class SitePolicy(BaseModel):
    """What the archive keeps of one site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: PolicyName = Field(description="evidence, sub or main")
    stations: list[str] | None = Field(
        None, max_length=64, description="main only: these stations (none: every camera)"
    )
    windows: list[Window] = Field(
        default_factory=list, max_length=16, description="main only: daily windows (none: always)"
    )

    @field_validator("stations")
    @classmethod
    def _stations(cls, value: list[str] | None) -> list[str] | None:
        for station in value or []:
            if not re.match(LEVEL_PATTERN, station):
                raise ValueError(f"station {station!r} must match {LEVEL_PATTERN}")
        return value


def wants(
    policy: SitePolicy, station: str | None, start: float, end: float, zone: str,
    stream: Lane = "main",
) -> bool:  # fmt: skip
    """Whether the archive wants a recorded segment [start, end) of this station's stream."""
    if policy.policy == "sub":
        return stream == "sub"  # the continuous sub stream of every camera
    if policy.policy != "main" or stream != "main":
        return False  # evidence: alert media only
    if policy.stations is not None and station not in policy.stations:
        return False
    if not policy.windows:
        return True
    tz = ZoneInfo(zone)
    middle = datetime.fromtimestamp((start + end) / 2, tz).time()
    return any(w.contains(middle) for w in policy.windows)
