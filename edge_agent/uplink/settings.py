"""The uplink's settings (`uplink:` in the edge config): the site's budget and archive transfer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArchiveSenderConfig(_Model):
    """Transfer of recordings to central's city archive (what central's site policy asks)."""

    enabled: bool = Field(True, description="send what central's archive asks for")
    poll_interval_s: float = Field(
        30.0, gt=0, le=3600, description="how often to ask central what it still needs"
    )
    batch: int = Field(20, ge=1, le=500, description="segments asked for per round")
    pause_give_up_s: float = Field(
        5.0,
        gt=0,
        le=600,
        description="a transfer paused for viewers this long closes its request; "
        "it resumes from the byte central holds",
    )
    timeout_s: float = Field(60.0, gt=0, le=600)


class UplinkConfig(_Model):
    """One bandwidth budget for everything the site sends to central."""

    budget_bytes_per_s: int | None = Field(
        None,
        ge=1000,
        description="the site's upload budget in bytes/s (e.g. 500000 for 4 Mbit/s); "
        "none: not limited (priorities still apply: archive waits for viewers)",
    )
    burst_s: float = Field(
        0.25, gt=0, le=10, description="budget that may be saved up, in seconds of the rate"
    )
    archive: ArchiveSenderConfig = ArchiveSenderConfig()
