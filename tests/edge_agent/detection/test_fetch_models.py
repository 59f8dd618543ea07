"""scripts/fetch_models.py: a cache built from the same spec and unchanged is left alone."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

from edge_agent.detection.detector import default_models_dir, model_cache_dir

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "fetch_models.py"


def fetch_models() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_models", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fetch_models"] = module
    spec.loader.exec_module(module)
    return module


def test_the_installed_cache_matches_every_build_spec() -> None:
    fm = fetch_models()
    for path in sorted(default_models_dir().glob("*.build.json")):
        spec = json.loads(path.read_text())
        assert fm.up_to_date(path, spec, model_cache_dir()), f"{path.name}: run fetch-models.sh"


def test_a_changed_file_or_spec_means_a_rebuild(tmp_path: Path) -> None:
    fm = fetch_models()
    source = default_models_dir() / "face-mask.build.json"
    spec_path = tmp_path / "face-mask.build.json"
    shutil.copyfile(source, spec_path)
    spec = json.loads(spec_path.read_text())
    cache = tmp_path / "cache"
    cache.mkdir()
    assert not fm.up_to_date(spec_path, spec, cache)  # nothing built yet
    for name in fm.outputs(spec):
        shutil.copyfile(model_cache_dir() / name, cache / name)
    files = {name: fm.sha256(cache / name) for name in fm.outputs(spec)}
    stamp = {"spec_sha256": fm.sha256(spec_path), "files": files}
    (cache / "face-mask.build").write_text(json.dumps(stamp))
    assert fm.up_to_date(spec_path, spec, cache)  # a second install does nothing
    with (cache / "face-mask.onnx").open("ab") as f:
        f.write(b"\0")
    assert not fm.up_to_date(spec_path, spec, cache)  # a damaged file is rebuilt
    shutil.copyfile(model_cache_dir() / "face-mask.onnx", cache / "face-mask.onnx")
    spec_path.write_text(spec_path.read_text().replace('"rtol": 0.001', '"rtol": 0.002'))
    assert not fm.up_to_date(spec_path, spec, cache)  # another spec is rebuilt
