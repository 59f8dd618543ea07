"""A refused request writes nothing; the edge's camera reports never undo a regulator's edit."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from central_support import Central, call, jpeg_bytes, submit_rectification

from central.alerts.evidence import discard_unreferenced, store_evidence
from fsv_contract import CameraStatePayload

pytestmark = pytest.mark.asyncio


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


async def test_refused_submissions_write_no_photo(central: Central) -> None:
    evidence_dir = central.svc.evidence_dir
    alert_id = await central.event("demo-canteen-a", "cam1")
    photos = [jpeg_bytes(i) for i in range(8)]
    # 409: nobody asked for a rectification yet.
    resp = await submit_rectification(central, "staff-canteen-a", alert_id, "done", photos)
    assert resp.status == 409, await resp.text()
    # 400: the last photo is no image; the good ones before it are not written either.
    resp = await submit_rectification(
        central, "staff-canteen-a", alert_id, "done", [*photos[:3], b"<html>"]
    )
    assert resp.status == 400
    # 404: another county's staff.
    resp = await submit_rectification(central, "staff-canteen-b", alert_id, "done", photos)
    assert resp.status == 404
    assert files_under(evidence_dir) == []
    # Once asked for, the same submission is stored, and only then.
    status, _ = await call(
        central,
        "inspector-a",
        "POST",
        f"/api/v1/alerts/{alert_id}/transitions",
        json={"action": "request_rectification", "note": "fix", "deadline": time.time() + 3600},
    )
    assert status == 201
    resp = await submit_rectification(central, "staff-canteen-a", alert_id, "done", photos[:2])
    assert resp.status == 201, await resp.text()
    assert len(files_under(evidence_dir)) == 2
    # A second submission is refused (already submitted) and adds nothing.
    resp = await submit_rectification(central, "staff-canteen-a", alert_id, "again", photos[2:])
    assert resp.status == 409
    assert len(files_under(evidence_dir)) == 2


async def test_discard_keeps_photos_a_recorded_row_uses(central: Central) -> None:
    root = central.svc.evidence_dir
    alert_id = await central.event("demo-canteen-a", "cam1")
    await call(
        central,
        "inspector-a",
        "POST",
        f"/api/v1/alerts/{alert_id}/transitions",
        json={"action": "request_rectification", "note": "fix", "deadline": time.time() + 3600},
    )
    resp = await submit_rectification(central, "staff-canteen-a", alert_id, "ok", [jpeg_bytes(1)])
    assert resp.status == 201
    # The same bytes again (a racing refused submission), a new photo, another alert's photo.
    kept = await asyncio.to_thread(store_evidence, root, alert_id, "x.jpg", jpeg_bytes(1), 1)
    lost = await asyncio.to_thread(store_evidence, root, alert_id, "y.jpg", jpeg_bytes(2), 1)
    alone = await asyncio.to_thread(store_evidence, root, "a2", "z.jpg", jpeg_bytes(3), 1)
    removed = await asyncio.to_thread(
        discard_unreferenced, central.svc.ldb, root, [kept, lost, alone]
    )
    assert removed == 2
    left = await asyncio.to_thread(files_under, root)
    assert Path(kept["path"]) in left and Path(lost["path"]) not in left
    assert not await asyncio.to_thread((root / "a2").exists)  # its emptied folder went too


async def test_site_reports_do_not_undo_a_regulator_rename(central: Central) -> None:
    hooks = central.svc.hooks
    site, cam = "demo-canteen-a", "cam7"

    def report(name: str, station: str) -> None:
        hooks.on_camera_state(
            site,
            CameraStatePayload.model_validate(
                {
                    "camera": cam,
                    "state": "online",
                    "since": "2026-01-01T00:00:00Z",
                    "name": name,
                    "station": station,
                }
            ),
        )

    await asyncio.to_thread(report, "Edge name", "kitchen_prep")
    path = f"/api/v1/sites/{site}/cameras/{cam}"
    status, before = await call(central, "admin", "GET", path)
    assert status == 200 and (before["name"], before["station"]) == ("Edge name", "kitchen_prep")
    status, after = await call(
        central, "admin", "PATCH", path, json={"name": "Disposal room", "station": "disposal"}
    )
    assert status == 200 and after["name_by_regulator"] and after["station_by_regulator"]
    # The edge keeps reporting its own idea, twice over.
    await asyncio.to_thread(report, "Storage", "cold_storage")
    await asyncio.to_thread(report, "Storage 2", "dish_washing")
    status, cam_now = await call(central, "inspector-a", "GET", path)
    assert status == 200
    assert (cam_now["name"], cam_now["station"]) == ("Disposal room", "disposal")
    assert (cam_now["reported_name"], cam_now["reported_station"]) == ("Storage 2", "dish_washing")
    _, listed = await call(
        central, "inspector-a", "GET", "/api/v1/cameras", params={"site_id": site}
    )
    (row,) = [c for c in listed["items"] if c["camera_id"] == cam]
    assert row["name"] == "Disposal room" and row["reported_name"] == "Storage 2"
