"""The model registry's class map and backend: checked, signed, sent, read from the card."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml
from central_support import make_config
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from central.cli import main
from central.models.registry import registry_for
from central.schema import apply_migrations
from central.storage.db import CentralDatabase
from fsv_contract.models import InstallModelArgs, install_signed_bytes


def _verify(public: Ed25519PublicKey, raw: dict[str, object]) -> InstallModelArgs:
    args = InstallModelArgs.model_validate(raw)
    public.verify(base64.b64decode(args.signature), install_signed_bytes(args))
    return args


def test_class_map_and_backend_are_registered_signed_and_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], central_db_url: str | None
) -> None:
    config = make_config(tmp_path, database=central_db_url)
    path = tmp_path / "central.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx bytes")
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"classes": ["person", "hat"], "backend": "onnx",
                                "class_map": {"person": "person", "hat": None}}))  # fmt: skip
    add = ["model", "add", str(model), "--name", "coco", "-c", str(path)]
    assert main([*add, "--version", "1", "--classes", "person,cell phone,chef hat",
                 "--class-map", "person=person,cell phone=phone_use,chef hat=",
                 "--backend", "nanodet"]) == 0  # fmt: skip
    assert main([*add, "--version", "2", "--card", str(card)]) == 0  # the trainer's card
    assert main([*add, "--version", "3", "--classes", "Normal,Fall"]) == 1
    assert "['Normal', 'Fall'] are not labels" in capsys.readouterr().err
    assert main([*add, "--version", "3", "--classes", "a,b", "--class-map", "c=person"]) == 1
    assert "['c'] are not among the classes" in capsys.readouterr().err
    assert main([*add, "--version", "3", "--classes", "a", "--class-map", "a=Person"]) == 1
    assert "'Person' of 'a' is not lower_case_words" in capsys.readouterr().err

    database = CentralDatabase(config.database_url)
    try:
        apply_migrations(database)
        registry = registry_for(database, config.data_dir)
        public = registry._signer.public_key
        one = _verify(public, registry.install_args("coco", "1", []))
        assert one.backend == "nanodet" and one.classes == ["person", "cell phone", "chef hat"]
        assert one.class_map == {"person": "person", "cell phone": "phone_use", "chef hat": None}
        two = _verify(public, registry.install_args("coco", "2", []))
        assert (two.backend, two.class_map) == ("onnx", {"person": "person", "hat": None})
        listed = {m["version"]: m for m in registry.list_models()}
        assert listed["1"]["card"]["class_map"] == listed["1"]["class_map"]
        # A row without the new columns (a version from before them) is sent without a class
        # map, as `fsv-model-v1`; a v2 signature does not fit it, so the map cannot be
        # stripped from a version that has one.
        with database.transaction() as db:
            db.execute("update models set class_map = null, backend = null where version = '2'")
        old = registry.install_args("coco", "2", [])
        assert (old["class_map"], old["backend"]) == ({}, "onnx")
        with pytest.raises(InvalidSignature):
            _verify(public, old)
    finally:
        database.close()
