"""Two-stage attributes: faces inside person boxes classified mask / no mask, declared as
data; the stage runs only where a rule needs it and says why when it cannot load."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge_agent.config import parse_config
from edge_agent.detection.attributes import (
    AttributeStage,
    TwoStageDetector,
    load_attribute,
)
from edge_agent.detection.detector import Detection, Detector, default_models_dir, model_cache_dir
from edge_agent.detection.model_cache import ModelCache, assess_detector, model_choice
from edge_agent.detection.presets import camera_rules
from edge_agent.errors import ModelError

MODELS = default_models_dir()
MESSI = Path("/usr/share/doc/opencv-doc/examples/data/messi5.jpg")  # a footballer, face visible


@pytest.fixture(scope="module")
def mask_stage() -> AttributeStage:
    try:
        return AttributeStage(load_attribute(MODELS, "mask"), model_cache_dir())
    except ModelError as e:
        pytest.fail(f"{e}: run scripts/fetch-models.sh")


def photo() -> NDArray[np.uint8]:
    image = cv2.imread(str(MESSI))
    if image is None:
        pytest.fail(f"{MESSI} is missing: install Debian's opencv-doc (scripts/install.sh)")
    return np.asarray(image, dtype=np.uint8)


def test_a_bare_face_in_a_person_box_is_no_mask(
    nanodet_detector: Detector, mask_stage: AttributeStage
) -> None:
    detector = TwoStageDetector(nanodet_detector, [mask_stage], {})
    assert "no_mask" in detector.labels() and "no_mask" in detector.class_map.caveats
    found = detector.detect(photo())
    faces = [d for d in found if d.label == "no_mask"]
    assert len(faces) == 1 and faces[0].score >= 0.7
    x1, y1, x2, y2 = faces[0].box
    people = [d.box for d in found if d.label == "person"]
    assert any(p[0] <= x1 and x2 <= p[2] and p[1] <= y1 and y2 <= p[3] for p in people)


def test_only_boxes_of_its_label_are_searched(mask_stage: AttributeStage) -> None:
    image = photo()
    car = Detection("vehicle", 0.9, (0.0, 0.0, 1.0, 1.0), "car")
    assert mask_stage.detect(image, [car]) == []
    assert mask_stage.detect(image, []) == []


def test_missing_files_and_bad_yaml_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"face-res10\.prototxt is missing \(fetch-models\.sh\)"):
        AttributeStage(load_attribute(MODELS, "mask"), tmp_path)
    (tmp_path / "attributes").mkdir()
    (tmp_path / "attributes" / "hat.yaml").write_text("name: hat\napplies_to: person\n")
    with pytest.raises(ModelError, match=r"hat\.yaml: classifier: Field required"):
        load_attribute(tmp_path, "hat")


def kitchen_config(tmp_path: Path, cache: Path) -> str:
    return f"""
site_id: site-a
storage: {{path: {tmp_path / "rec"}}}
data_dir: {tmp_path / "state"}
detection: {{model_cache: {cache}}}
cameras:
  - id: kitchen-1
    name: Kitchen
    station: kitchen_prep
    main_url: rtsp://127.0.0.1:9/none
  - id: pen
    name: Pens
    station: rest_pen
    main_url: rtsp://127.0.0.1:9/none
"""


def test_stage_runs_where_a_rule_needs_it_and_capability_says_why(tmp_path: Path) -> None:
    config = parse_config(kitchen_config(tmp_path, model_cache_dir()))
    kitchen, pen = config.cameras
    kitchen_choice = model_choice(config, kitchen, camera_rules(config, kitchen))
    assert kitchen_choice.attributes == ("mask",)
    assert model_choice(config, pen, camera_rules(config, pen)).attributes == ()
    detector = ModelCache(config).get(kitchen_choice)
    caps = {c.rule: c for c in assess_detector(camera_rules(config, kitchen), detector)}
    assert caps["no-mask"].status == "partial" and "faces turned" in caps["no-mask"].reason

    # The mask files are missing from this cache (NanoDet is there): the rule is blind, and why.
    partial_cache = tmp_path / "cache"
    partial_cache.mkdir()
    (partial_cache / "nanodet-m.onnx").symlink_to(model_cache_dir() / "nanodet-m.onnx")
    config = parse_config(kitchen_config(tmp_path, partial_cache))
    rules = camera_rules(config, config.cameras[0])
    detector = ModelCache(config).get(model_choice(config, config.cameras[0], rules))
    caps = {c.rule: c for c in assess_detector(rules, detector)}
    assert caps["no-mask"].status == "blind"
    assert "model for no_mask is not loaded" in caps["no-mask"].reason
    assert "face-res10.prototxt is missing" in caps["no-mask"].reason
    assert caps["kitchen-crowding"].status == "working"
