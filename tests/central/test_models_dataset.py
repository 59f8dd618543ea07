"""Dataset export: labelled alert images out as a YOLO dataset, split by camera and day."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from central_support import Central, call, jpeg_bytes

from central.cli import main
from central.ingest.media import Announced
from central.keys import CONFIG, MEDIA

pytestmark = pytest.mark.asyncio

DAY0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
HAT = {"cls": "no_chef_hat", "x1": 0.2, "y1": 0.1, "x2": 0.6, "y2": 0.5}
PERSON = {"cls": "person", "x1": 0.1, "y1": 0.1, "x2": 0.9, "y2": 0.9}


async def _stored_alert(central: Central, camera: str, when: datetime, name: str, seed: int) -> str:
    alert_id = await central.event("demo-canteen-a", camera, start=when.isoformat())
    await _store_image(central, alert_id, name, seed)
    return alert_id


async def _store_image(central: Central, alert_id: str, name: str, seed: int) -> None:
    """A JPEG (drawn from `seed`) stored as the alert's media file `name`."""
    media = central.client.app[MEDIA]
    data = jpeg_bytes(seed)
    temp = media.temp_path("demo-canteen-a", alert_id, name)
    temp.write_bytes(data)
    ann = Announced(hashlib.sha256(data).hexdigest(), len(data), "image/jpeg")
    await asyncio.to_thread(media.commit, "demo-canteen-a", alert_id, name, temp, ann)


async def _export(config_file: Path, classes: str, out: Path) -> int:
    """`central-server dataset export`: its exit code."""
    args = ["dataset", "export", "-c", str(config_file), "--classes", classes, "--out", str(out)]
    return await asyncio.to_thread(main, args)


async def _label(central: Central, alert_id: str, verdict: str, boxes: list[object]) -> None:
    status, body = await call(
        central,
        "inspector-a",
        "PUT",
        f"/api/v1/alerts/{alert_id}/label",
        json={"verdict": verdict, "boxes": boxes},
    )
    assert status == 200, body


async def test_export_splits_by_camera_day_and_records_provenance(
    central: Central, tmp_path: Path
) -> None:
    expected: dict[str, str] = {}
    seed = 0
    for camera in ("cam1", "cam2"):
        for day in range(3):
            for minute in (0, 0, 7):  # two alerts in one minute, one later
                seed += 1
                when = DAY0 + timedelta(days=day, minutes=minute, seconds=seed)
                alert_id = await _stored_alert(central, camera, when, "snapshot.jpg", seed)
                if seed % 3 == 0:
                    await _label(central, alert_id, "false", [])  # background
                else:
                    await _label(central, alert_id, "true", [HAT, PERSON])
                expected[alert_id] = "snapshot.jpg"
    # A clean frame beside the snapshot is preferred; an unlabelled alert is left out.
    clean = await _stored_alert(central, "cam1", DAY0, "snapshot.jpg", 99)
    await _store_image(central, clean, "frame.jpg", 100)
    await _label(central, clean, "true", [HAT])
    expected[clean] = "frame.jpg"
    await _stored_alert(central, "cam2", DAY0, "snapshot.jpg", 101)
    # A true verdict without boxes cannot teach a detector: skipped, and said so.
    unboxed = await _stored_alert(central, "cam2", DAY0, "snapshot.jpg", 102)
    await _label(central, unboxed, "true", [])

    config_file = tmp_path / "central.yaml"
    config = central.client.app[CONFIG].model_dump(mode="json", exclude_none=True)
    config_file.write_text(yaml.safe_dump(config))
    out = tmp_path / "ds"
    code = await _export(config_file, "no_chef_hat", out)
    assert code == 0

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == ["no_chef_hat"]
    images = {p["alert_id"]: p for p in manifest["images"]}
    assert set(images) == set(expected)
    assert {a: p["source"] for a, p in images.items()} == expected
    assert images[clean]["annotated"] is False
    assert manifest["skipped"] == {"true verdict without a box of the chosen classes": 1}
    # Never the same camera-minute (nor camera-day) on both sides; both sides non-empty.
    sides: dict[tuple[str, str], set[str]] = {}
    for p in manifest["images"]:
        sides.setdefault((p["camera_id"], p["captured_at"][:16]), set()).add(p["split"])
        assert p["licence"] and p["labelled_by"] == "inspector-a"
        assert (out / p["file"]).read_bytes() and hashlib.sha256(
            (out / p["file"]).read_bytes()
        ).hexdigest() == p["sha256"]
    assert all(len(s) == 1 for s in sides.values())
    assert not set(manifest["split"]["val_groups"]) & set(manifest["split"]["train_groups"])
    counts = manifest["counts"]
    assert counts["train"]["images"] > 0 and counts["val"]["images"] > 0
    total_hats = sum(counts[s]["boxes"]["no_chef_hat"] for s in ("train", "val"))
    labelled_true = sum(1 for a in images if a != clean and images[a]["verdict"] == "true")
    assert total_hats == labelled_true + 1
    left_out = sum(counts[s]["boxes_left_out"].get("person", 0) for s in ("train", "val"))
    assert left_out == labelled_true
    # Label files: YOLO lines for boxes, empty for background images.
    label = (out / images[clean]["file"].replace("images/", "labels/")).with_suffix(".txt")
    assert label.read_text() == "0 0.400000 0.300000 0.400000 0.400000\n"
    background = next(a for a, p in images.items() if p["verdict"] == "false")
    bg = out / images[background]["file"].replace("images/", "labels/").replace(".jpg", ".txt")
    assert bg.read_text() == ""
    data_yaml = yaml.safe_load((out / "data.yaml").read_text())
    assert data_yaml["names"] == {0: "no_chef_hat"} and data_yaml["val"] == "images/val"

    # The same labels and seed give the same split; a used folder is refused, untouched.
    again = tmp_path / "ds2"
    assert await _export(config_file, "no_chef_hat", again) == 0
    second = json.loads((again / "manifest.json").read_text())
    assert second["split"] == manifest["split"]
    assert await _export(config_file, "no_chef_hat", out) == 1
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert await _export(config_file, "Bad", tmp_path / "x") == 1
