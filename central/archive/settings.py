"""The archive's settings (`archive:` in central's config)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PolicyName = Literal["evidence", "sub", "main"]


class ArchiveConfig(BaseModel):
    """Where the city archive keeps recordings, how long, and the free space it leaves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = Field(None, description="archive folder; default: <data_dir>/archive")
    retention_days: int = Field(90, ge=1, le=3650, description="days the archive keeps footage")
    min_free_percent: float = Field(
        10.0, ge=0, le=90, description="below this free space, the oldest footage goes first"
    )
    min_free_bytes: int = Field(10 << 30, ge=0, description="the same, in bytes")
    default_policy: PolicyName = Field(
        "evidence", description="policy of a site that has none: evidence = alert media only"
    )
    cleanup_interval_s: float = Field(300.0, gt=0, le=86400)
    max_segment_bytes: int = Field(512 << 20, ge=1 << 20, description="largest segment taken")
