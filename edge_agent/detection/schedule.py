"""Weekly schedules in the site's local time; a window may run across midnight."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Window(BaseModel):
    """A daily window, e.g. `{days: [mon, fri], start: "22:00", end: "06:00"}`.

    `days` name the day the window starts on; an `end` at or before `start` ends on the next
    day (22:00-06:00 on Friday covers Friday night and Saturday early morning).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[Day] = Field(default_factory=lambda: list(DAYS), min_length=1)
    start: time = Field(description="local time HH:MM")
    end: time = Field(description="local time HH:MM; at or before start means the next day")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hh_mm(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted 06:00 as the integer 360 (sexagesimal): undo that.
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return time(value // 60, value % 60)
        return value

    def contains(self, local: datetime) -> bool:
        """True if the local (naive or aware) time lies in this window."""
        today = DAYS[local.weekday()]
        yesterday = DAYS[(local.weekday() - 1) % 7]
        now = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return today in self.days and self.start <= now < self.end
        return (today in self.days and now >= self.start) or (
            yesterday in self.days and now < self.end
        )


def local_time(ts: float, zone: ZoneInfo) -> datetime:
    """A UTC epoch second as an aware local time."""
    return datetime.fromtimestamp(ts, UTC).astimezone(zone)


def in_schedule(windows: Sequence[Window] | None, ts: float, zone: ZoneInfo) -> bool:
    """True if `ts` (UTC epoch seconds) falls in any window; no windows means always."""
    if windows is None:
        return True
    local = local_time(ts, zone)
    return any(w.contains(local) for w in windows)
