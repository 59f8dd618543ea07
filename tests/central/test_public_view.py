"""Public kitchen links (QR, read-only, rate-limited, revocable) and the clip export audit."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from central_support import Central, call

from central.regulation.public import RateLimiter
from central.regulation.scope import Scope

pytestmark = pytest.mark.asyncio


async def test_canteen_publishes_cameras_then_revokes(central: Central) -> None:
    orgs = central.seed["orgs"]
    await central.event("demo-canteen-a", "cam1")
    central.svc.orgs.upsert_camera("demo-canteen-a", "cam2", name="洗消间", station="dish_washing")
    status, err = await call(
        central,
        "staff-slaughter-a",
        "POST",
        "/api/v1/public-links",
        json={"org_id": orgs["slaughter_a"], "cameras": ["demo-slaughter-a/x"]},
    )
    assert status == 400 and "canteen" in err["error"]["message"]
    status, err = await call(
        central,
        "staff-canteen-a",
        "POST",
        "/api/v1/public-links",
        json={"org_id": orgs["canteen_a"], "cameras": ["demo-canteen-b/cam1"]},
    )
    assert status == 400
    status, link = await call(
        central,
        "staff-canteen-a",
        "POST",
        "/api/v1/public-links",
        json={"org_id": orgs["canteen_a"], "cameras": ["demo-canteen-a/cam2"], "label": "door"},
    )
    assert status == 201 and link["url"].endswith(f"/p/{link['token']}")

    status, svg = await call(
        central, "staff-canteen-a", "GET", f"/api/v1/public-links/{link['id']}/qr.svg"
    )
    assert status == 200 and svg.startswith(b"<?xml") and b"<svg" in svg

    resp = await central.client.get(f"/api/v1/public/{link['token']}")  # no login
    view = await resp.json()
    assert resp.status == 200
    assert view["canteen"]["name"] == "中卫市第一小学食堂"
    assert [c["ref"] for c in view["cameras"]] == ["demo-canteen-a/cam2"]
    assert set(view) == {"canteen", "cameras"}  # nothing else: no alerts, no users
    resp = await central.client.get(f"/p/{link['token']}")
    page = await resp.text()
    assert resp.status == 200 and "洗消间" in page and "cam1" not in page

    status, _ = await call(
        central, "staff-canteen-a", "DELETE", f"/api/v1/public-links/{link['id']}"
    )
    assert status == 200
    assert (await central.client.get(f"/api/v1/public/{link['token']}")).status == 404
    assert (await central.client.get(f"/p/{link['token']}")).status == 404


async def test_public_view_is_rate_limited(central: Central) -> None:
    central.svc.public_rate = RateLimiter(limit=3, window_s=60)
    codes = [(await central.client.get("/api/v1/public/unknown")).status for _ in range(5)]
    assert codes == [404, 404, 404, 429, 429]


async def test_clip_download_is_an_audited_export(central: Central, tmp_path: Path) -> None:
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(1000)
    sha = hashlib.sha256(data).hexdigest()
    clip = {"name": "clip.mp4", "sha256": sha, "bytes": len(data), "content_type": "video/mp4"}
    alert_id = await central.event("demo-canteen-a", "cam1", clip=clip)
    stored = tmp_path / "clip.mp4"
    stored.write_bytes(data)
    with central.svc.ldb.transaction() as db:  # as ingest's media upload stores it
        db.table("media").insert(
            {
                "event_id": alert_id,
                "name": "clip.mp4",
                "site": "demo-canteen-a",
                "sha256": sha,
                "bytes": len(data),
                "content_type": "video/mp4",
                "path": str(stored),
                "stored_at": 1.0,
            }
        )
    status, body = await call(
        central, "inspector-b", "GET", f"/api/v1/alerts/{alert_id}/media/clip.mp4"
    )
    assert status == 404
    status, body = await call(
        central, "inspector-a", "GET", f"/api/v1/alerts/{alert_id}/media/clip.mp4"
    )
    assert status == 200 and body == data
    status, _ = await call(
        central, "inspector-a", "GET", f"/api/v1/alerts/{alert_id}/media/snap.jpg"
    )
    assert status == 404
    log: dict[str, Any] = central.svc.audit.query(Scope.everything(), action="clip_export")
    assert log["total"] == 1 and log["items"][0]["username"] == "inspector-a"
    assert log["items"][0]["detail"]["sha256"] == sha
