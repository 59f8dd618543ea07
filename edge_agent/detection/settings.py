"""Detection settings: the `detection` section of the edge config and per-camera overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge_agent.detection.schedule import Window
from edge_agent.detection.zones import Polygon

IDENT = r"^[a-z0-9][a-z0-9_-]{0,62}$"
LABEL = r"^[a-z][a-z0-9_]{0,63}$"
Label = Annotated[str, Field(pattern=LABEL, description="a detection label, e.g. person")]
RuleType = Literal["forbidden", "required_presence", "after_hours", "crowding", "loitering"]
Severity = Literal["info", "warning", "critical"]

# What an event is called when a rule does not name its kind.
DEFAULT_KINDS: dict[str, str] = {
    "required_presence": "unattended_station",
    "after_hours": "after_hours_activity",
    "crowding": "crowding",
    "loitering": "loitering",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSpec(_Model):
    """One station rule. In a camera's config only `id` is required: the fields given there
    replace those of the preset rule with the same id, or define a new rule (then `type` too).
    """

    id: str = Field(pattern=IDENT, description="rule id, unique per camera")
    type: RuleType | None = Field(None, description="what the rule checks")
    kind: str | None = Field(
        None, pattern=LABEL, description="violation kind reported; default from type/classes"
    )
    enabled: bool = True
    classes: list[Label] = Field(default_factory=lambda: ["person"], min_length=1)
    zone: Polygon | None = Field(None, description="relative polygon; default the whole frame")
    anchor: Literal["bottom", "center"] = Field(
        "bottom", description="point of a box tested against the zone (feet or centre)"
    )
    min_score: float = Field(0.0, ge=0.0, le=1.0)
    min_seconds: float = Field(
        2.0, ge=0.0, le=86400, description="condition must hold this long before an event"
    )
    min_count: int = Field(1, ge=1, le=1000, description="required_presence: persons needed")
    max_count: int = Field(5, ge=1, le=1000, description="crowding: more than this is a crowd")
    max_absent_s: float = Field(
        300.0, ge=0.0, le=86400, description="required_presence: absence tolerated"
    )
    schedule: list[Window] | None = Field(
        None, description="local-time windows when the rule applies; default always"
    )
    permitted: list[Window] | None = Field(
        None, description="after_hours: local-time windows when activity is allowed"
    )
    end_after_s: float = Field(
        5.0, ge=0.0, le=3600, description="condition must be gone this long to end an event"
    )
    max_event_s: float = Field(
        600.0, gt=0.0, le=86400, description="an event longer than this is closed (and reopens)"
    )
    cooldown_s: float = Field(300.0, ge=0.0, le=86400, description="quiet time after an event")
    severity: Severity = "warning"

    @property
    def event_kind(self) -> str:
        """The violation kind this rule reports."""
        if self.kind:
            return self.kind
        if self.type in DEFAULT_KINDS:
            return DEFAULT_KINDS[self.type]
        return "person_in_zone" if self.classes == ["person"] else self.classes[0]


class MotionConfig(_Model):
    """The cheap motion gate in front of the detector."""

    enabled: bool = True
    width: int = Field(160, ge=32, le=640, description="width of the grey frame compared")
    pixel_threshold: int = Field(
        25, ge=1, le=255, description="grey-level change that counts a pixel as moving"
    )
    min_area: float = Field(0.002, ge=0.0, le=1.0, description="fraction of pixels that must move")
    learning_rate: float = Field(0.05, gt=0.0, le=1.0, description="background update rate")
    hold_s: float = Field(3.0, ge=0.0, le=600, description="keep detecting after motion stops")
    refresh_s: float = Field(
        30.0, gt=0.0, le=3600, description="run the detector at least this often anyway"
    )
    crop: bool = Field(
        True,
        description="detect on a crop around the moving region when motion is confined "
        "(whole frame when it is spread, while holding and on refresh)",
    )
    crop_pad: float = Field(
        0.25, ge=0.0, le=2.0, description="the moving region grows by this share on every side"
    )
    crop_min_side: float = Field(
        0.5, gt=0.0, le=1.0, description="a crop is at least this share of the frame's height"
    )
    crop_max_area: float = Field(
        0.6, gt=0.0, le=1.0, description="a crop over this share of the frame: whole frame"
    )


class DetectionConfig(_Model):
    """Site-wide detection settings (`detection:` in the edge config)."""

    enabled: bool = True
    backend: Literal["nanodet", "onnx", "ultralytics"] = Field(
        "nanodet",
        description="nanodet: NanoDet head on onnxruntime (default, NanoDet-m COCO); onnx: "
        "YOLOv8-style head on onnxruntime (without `model`, the former person-only default); "
        "ultralytics: .pt files",
    )
    model: Path | None = Field(
        None, description="model file; default the backend's built-in model (see models/README)"
    )
    model_cache: Path | None = Field(
        None,
        description="folder of models built by scripts/fetch-models.sh; "
        "default $FSV_MODEL_CACHE or /var/cache/fsv/models",
    )
    class_map: Path | None = Field(
        None, description="YAML mapping model classes to labels; relative to models_dir"
    )
    models_dir: Path | None = Field(
        None, description="folder of class maps and stations/*.yaml; default the repo's models/"
    )
    attributes: list[str] = Field(
        default_factory=lambda: ["mask"],
        description="two-stage attributes (models/attributes/<name>.yaml) run on cameras "
        "with a rule on one of their labels",
    )
    confidence: float = Field(0.35, gt=0.0, lt=1.0)
    iou: float = Field(0.45, gt=0.0, lt=1.0, description="NMS overlap threshold")
    threads: int = Field(1, ge=0, le=64, description="inference threads per model; 0 = all")
    workers: int = Field(
        0,
        ge=0,
        le=64,
        description="inference workers shared by all cameras (each runs one frame at a time, "
        "cameras served in turn); 0 = half the CPU cores, at least 1",
    )
    fps: float = Field(2.0, gt=0.0, le=15.0, description="frames per second analysed")
    frame_width: int = Field(640, ge=160, le=1920, description="frames are downscaled to this")
    input_size: int = Field(
        320,
        ge=64,
        le=1280,
        multiple_of=32,
        description="the most pixels a side of the detector's input has (models with a free "
        "input size, such as the default NanoDet-m: a 640x360 frame runs at 320x192, about "
        "half the cost of 416x256); models with a fixed input keep theirs",
    )
    queue_size: int = Field(4, ge=1, le=100, description="decoded frames waiting; oldest dropped")
    motion: MotionConfig = MotionConfig()
    track_max_age_s: float = Field(3.0, gt=0.0, le=60, description="keep unseen tracks this long")
    pre_roll_s: float = Field(10.0, ge=0.0, le=300)
    post_roll_s: float = Field(10.0, ge=0.0, le=300)
    clip_wait_s: float = Field(
        180.0, gt=0.0, le=3600, description="wait this long for the recorder's segments"
    )
    first_clip_s: float = Field(
        10.0,
        ge=0.0,
        le=300,
        description="while an event runs, send pre-roll plus this many seconds as its first "
        "clip as soon as they are recorded (0: only the full clip at the end)",
    )
    retention_days: int | None = Field(
        None, ge=1, le=3650, description="keep events this long; default the camera's retention"
    )


class CameraDetectionConfig(_Model):
    """A camera's own detection settings (`detection:` inside a camera entry)."""

    enabled: bool = True
    preset: str | None = Field(
        None, pattern=IDENT, description="station preset; default the camera's station"
    )
    use_preset: bool = Field(True, description="false: only the rules listed here apply")
    rules: list[RuleSpec] = Field(default_factory=list, description="overrides and extra rules")
    masks: list[Polygon] = Field(
        default_factory=list, description="relative polygons ignored by motion and detection"
    )
    model: Path | None = Field(None, description="this camera's own model file")
    class_map: Path | None = None
    fps: float | None = Field(None, gt=0.0, le=15.0)

    @field_validator("rules")
    @classmethod
    def _unique_rule_ids(cls, rules: list[RuleSpec]) -> list[RuleSpec]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return rules
