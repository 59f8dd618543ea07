"""Arguments of the commands central sends (`fsv/v1/{site}/cmd/{verb}`), one model per verb.

`CommandPayload.args` carries one of these as a JSON object; the edge validates it with the
model of the verb in the topic and replies with `ReplyPayload`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fsv_contract import integrity, models, video
from fsv_contract.payloads import Level, UtcDatetime

HOLD = "hold"
RELEASE = "release"


class _Args(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class HoldArgs(_Args):
    """Keep a camera's recordings of [start, end] as evidence until released.

    Idempotent by `ref`: a second hold with the same ref replaces the range (an event that
    ended widens its hold), so central may resend it after a reconnect.
    """

    ref: str = Field(min_length=1, max_length=128, description="e.g. alert:<event id>")
    camera: Level
    start: UtcDatetime
    end: UtcDatetime
    reason: str = Field("", max_length=200)

    @model_validator(mode="after")
    def _ordered(self) -> HoldArgs:
        if self.end <= self.start:
            raise ValueError("`end` must be after `start`")
        return self


class ReleaseArgs(_Args):
    """Release every hold made under `ref`; releasing an unknown ref is not an error."""

    ref: str = Field(min_length=1, max_length=128)


COMMAND_ARGS: dict[str, type[BaseModel]] = {
    HOLD: HoldArgs,
    RELEASE: ReleaseArgs,
    integrity.VERB_AUDIT: integrity.AuditArgs,
    **video.COMMAND_ARGS,  # stream_start, stream_stop, recordings, export_clip, thumbnail
    **models.COMMAND_ARGS,  # install_model, rollback_model, sample_frames
}
