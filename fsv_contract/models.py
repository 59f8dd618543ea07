"""Model distribution: central tells a site to install a signed model version, or roll back.

The edge downloads the file from `{central_url}/api/v1/edge/model?name=..&version=..` (HTTP
Basic, the site's broker login), checks its SHA-256 and central's Ed25519 signature over
`signed_bytes(...)`, loads it beside the running model, runs it on a recent frame, and only
then switches. On any failure it keeps the running model and replies with the reason.
"""

from __future__ import annotations

import json
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from fsv_contract.payloads import Level, UtcDatetime

VERB_INSTALL_MODEL = "install_model"
VERB_ROLLBACK_MODEL = "rollback_model"
VERB_SAMPLE_FRAMES = "sample_frames"
MAX_SAMPLES = 50
SAMPLE_NAME_PATTERN = r"^sample-[0-9]{3}\.jpg$"
MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
DOWNLOAD_PATH = "/api/v1/edge/model"


class _Args(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class InstallModelArgs(_Args):
    """Install a model version from central's registry on some or all cameras."""

    name: str = Field(pattern=MODEL_NAME_PATTERN)
    version: str = Field(pattern=MODEL_NAME_PATTERN)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex digest of the model file")
    bytes: int = Field(gt=0, description="size of the model file")
    classes: list[str] = Field(min_length=1, max_length=1000, description="class names by index")
    key_id: str = Field(min_length=1, max_length=64, description="central's signing key")
    signature: str = Field(
        min_length=1, max_length=200, description="base64 Ed25519 over signed_bytes()"
    )
    cameras: list[Level] = Field(
        default_factory=list, max_length=1024, description="only these cameras; empty: all"
    )
    shadow: bool = Field(
        False,
        description="run it beside the current model without raising alerts, and report "
        "how their detections agree in the heartbeat (`shadow`); nothing is switched",
    )


class RollbackModelArgs(_Args):
    """Go back to the model each camera ran before its last install."""

    cameras: list[Level] = Field(
        default_factory=list, max_length=1024, description="only these cameras; empty: all"
    )
    shadow: bool = Field(False, description="stop the shadow model instead (nothing switched)")


class SampleFramesArgs(_Args):
    """Decode sample frames of a camera's recordings for labelling and upload them.

    The edge takes the frames at `times` (central picks them around events) or, without
    times, at random instants of its recordings in [since, until]; it writes each as
    `sample-NNN.jpg`, replies with their names, SHA-256 and times (`result.frames`), then
    PUTs them to `/api/v1/media/{batch}/{name}`: central stores only what the reply announced.
    """

    batch: UUID = Field(description="central's id of this request; the frames' media event id")
    camera: Level
    count: int = Field(ge=1, le=MAX_SAMPLES)
    mode: Literal["random", "events"] = "random"
    times: list[UtcDatetime] = Field(default_factory=list, max_length=MAX_SAMPLES)
    since: UtcDatetime | None = Field(None, description="random mode: from (default a day ago)")
    until: UtcDatetime | None = Field(None, description="random mode: to (default now)")


class SampleFrame(_Args):
    """One frame a `sample_frames` reply announces."""

    name: str = Field(pattern=SAMPLE_NAME_PATTERN)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(gt=0)
    ts: UtcDatetime = Field(description="the instant of the recording the frame shows")


def signed_bytes(name: str, version: str, sha256: str, classes: list[str]) -> bytes:
    """The canonical bytes central signs for a model version."""
    body = {"classes": classes, "name": name, "sha256": sha256, "version": version}
    return b"fsv-model-v1\n" + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def model_label(name: str, version: str) -> str:
    """How a heartbeat names a model version: `name@version`."""
    return f"{name}@{version}"


COMMAND_ARGS: dict[str, type[BaseModel]] = {
    VERB_INSTALL_MODEL: InstallModelArgs,
    VERB_ROLLBACK_MODEL: RollbackModelArgs,
    VERB_SAMPLE_FRAMES: SampleFramesArgs,
}
