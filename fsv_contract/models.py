"""Model distribution: central tells a site to install a signed model version, or roll back.

The edge downloads the file from `{central_url}/api/v1/edge/model?name=..&version=..` (HTTP
Basic, the site's broker login), checks its SHA-256 and central's Ed25519 signature over
`signed_bytes(...)`, loads it with the named decoder `backend` and the registry's class map
(model class -> rule label, which wins over any names in the file), runs it beside the
running model on recent frames, and only then switches. On any failure it keeps the running
model and replies with the reason.
"""

from __future__ import annotations

import json
import re
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fsv_contract.payloads import Level, UtcDatetime

VERB_INSTALL_MODEL = "install_model"
VERB_ROLLBACK_MODEL = "rollback_model"
VERB_SAMPLE_FRAMES = "sample_frames"
MAX_SAMPLES = 50
SAMPLE_NAME_PATTERN = r"^sample-[0-9]{3}\.jpg$"
MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
# Decoder layouts, named as in the edge's `detection.backend`.
ModelBackend = Literal["onnx", "nanodet", "ultralytics"]
MODEL_BACKENDS: tuple[str, ...] = ("onnx", "nanodet", "ultralytics")
LABEL_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_LABEL = re.compile(LABEL_PATTERN)
DOWNLOAD_PATH = "/api/v1/edge/model"


class _Args(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class InstallModelArgs(_Args):
    """Install a model version from central's registry on some or all cameras."""

    name: str = Field(pattern=MODEL_NAME_PATTERN)
    version: str = Field(pattern=MODEL_NAME_PATTERN)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex digest of the model file")
    bytes: int = Field(gt=0, description="size of the model file")
    classes: list[str] = Field(
        min_length=1,
        max_length=1000,
        description="the model's class names by index (they win over names in the file)",
    )
    class_map: dict[str, str | None] = Field(
        default_factory=dict,
        max_length=1000,
        description="model class -> rule label (`null` drops the class); empty: every class "
        "under its own lower-cased name (an older central's command)",
    )
    backend: ModelBackend = Field(
        "onnx",
        description="the decoder layout, as the edge's `detection.backend` names it: `onnx` "
        "(YOLOv8-style head), `nanodet`, `ultralytics`",
    )
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

    @field_validator("class_map")
    @classmethod
    def _labels_ok(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        for model_class, label in value.items():
            if not 0 < len(model_class) <= 64:
                raise ValueError(f"class map: model class {model_class!r}: 1 to 64 characters")
            if label is not None and not _LABEL.match(label):
                raise ValueError(
                    f"class map: label {label!r} for {model_class!r}: lower_case_words"
                )
        return value


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


def signed_bytes(
    name: str,
    version: str,
    sha256: str,
    classes: list[str],
    class_map: dict[str, str | None] | None = None,
    backend: str = "onnx",
) -> bytes:
    """The canonical bytes central signs for a model version.

    A version with a class map or another backend than `onnx` is signed as `fsv-model-v2`
    over those too, so neither can be changed or dropped in transit; one without either is
    signed as `fsv-model-v1` (what versions registered before class maps carry)."""
    body: dict[str, object] = {"classes": classes, "name": name, "sha256": sha256,
                               "version": version}  # fmt: skip
    head = b"fsv-model-v1\n"
    if class_map or backend != "onnx":
        body.update(class_map=class_map or {}, backend=backend)
        head = b"fsv-model-v2\n"
    return head + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def install_signed_bytes(args: InstallModelArgs) -> bytes:
    """What the signature of an `install_model` command covers."""
    return signed_bytes(
        args.name, args.version, args.sha256, args.classes, args.class_map, args.backend
    )


def model_label(name: str, version: str) -> str:
    """How a heartbeat names a model version: `name@version`."""
    return f"{name}@{version}"


COMMAND_ARGS: dict[str, type[BaseModel]] = {
    VERB_INSTALL_MODEL: InstallModelArgs,
    VERB_ROLLBACK_MODEL: RollbackModelArgs,
    VERB_SAMPLE_FRAMES: SampleFramesArgs,
}
