"""A county-A inspector reaches nothing of county B, through every API route."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import pytest
from central_support import Central, call, jpeg_bytes, submit_rectification

pytestmark = pytest.mark.asyncio

B_MARKERS = ("demo-canteen-b", "中宁", "inspector-b", "staff-canteen-b")
# Routes that show only the caller's own things or public documents: checked to leak nothing.
SELF_ONLY = {
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/auth/tokens"),
    ("GET", "/api/v1/auth/tokens"),
    ("PUT", "/api/v1/me/push-filters"),
    ("GET", "/api/v1/push/vapid-public-key"),
    ("POST", "/api/v1/push/subscriptions"),
    ("GET", "/api/v1/push/subscriptions"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/v1/ingest/stats"),
}
# Capability links for the public, by design reachable without any account.
# Open to anyone holding the link's token (the public kitchen page and its video).
PUBLIC = {
    ("GET", "/api/v1/public/{token}"),
    ("GET", "/api/v1/public/{token}/live/{site_id}/{camera_id}"),
}


async def build_county_b(central: Central) -> dict[str, Any]:
    """Objects of every kind in county B, made by B's own users and admins."""
    seed = central.seed["orgs"]
    alert_id = await central.event("demo-canteen-b", "cam1")
    status, _ = await call(
        central,
        "inspector-b",
        "POST",
        f"/api/v1/alerts/{alert_id}/transitions",
        json={"action": "request_rectification", "note": "hats", "deadline": time.time() + 3600},
    )
    assert status == 201
    resp = await submit_rectification(central, "staff-canteen-b", alert_id, "done", [jpeg_bytes()])
    assert resp.status == 201, await resp.text()
    evidence_id = (await resp.json())["evidence"][0]["id"]
    status, hook = await call(
        central,
        "admin",
        "POST",
        "/api/v1/webhooks",
        json={"org_id": seed["county_b"], "url": "https://93.184.215.14/x"},
    )
    assert status == 201
    status, link = await call(
        central,
        "staff-canteen-b",
        "POST",
        "/api/v1/public-links",
        json={"org_id": seed["canteen_b"], "cameras": ["demo-canteen-b/cam1"]},
    )
    assert status == 201, link
    status, sub = await call(
        central,
        "inspector-b",
        "POST",
        "/api/v1/push/subscriptions",
        json={
            "endpoint": "https://93.184.215.14/push/b",
            "keys": {"p256dh": "B" * 87, "auth": "a" * 22},
        },
    )
    assert status == 201
    status, api_token = await call(
        central,
        "inspector-b",
        "POST",
        "/api/v1/auth/tokens",
        json={"name": "b-script", "password": central.passwords["inspector-b"]},
    )
    assert status == 201, api_token
    status, integrity = await call(
        central, "admin", "POST", "/api/v1/integrity/audits", json={"site_id": "demo-canteen-b"}
    )
    assert status == 202, integrity
    users = {u.username: u.id for u in central.svc.users.list_users(_everything())}
    batch_id = str(uuid.uuid4())  # a sample frame of B's camera, as the edge uploaded it
    with central.svc.ldb.transaction() as db:
        org_path = db.execute(
            "select org_path from orgs where id = ?", [seed["canteen_b"]]
        ).fetchone()[0]
        db.table("sample_frames").insert(
            {"batch_id": batch_id, "name": "snapshot.jpg", "site_id": "demo-canteen-b",
             "camera_id": "cam1", "org_path": org_path, "ts": time.time(), "sha256": "0" * 64,
             "stored_at": time.time()}
        )  # fmt: skip
    return {
        "org_id": str(seed["canteen_b"]),
        "site_id": "demo-canteen-b",
        "camera_id": "cam1",
        "camera": "cam1",
        "path": "2026/01/01/seg.mp4",
        "alert_id": alert_id,
        "evidence_id": str(evidence_id),
        "user_id": str(users["inspector-b"]),
        "webhook_id": str(hook["id"]),
        "link_id": str(link["id"]),
        "token_id": api_token["id"],
        "audit_id": str(integrity["id"]),
        "subscription_id": str(sub["id"]),
        "event_id": alert_id,
        "name": "snapshot.jpg",
        "token": link["token"],
        "county_b": seed["county_b"],
        "canteen_b": seed["canteen_b"],
        "batch_id": batch_id,
    }


def _everything() -> Any:
    from central.regulation.scope import Scope

    return Scope.everything()


def bodies(b: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Request bodies aimed at county B for the routes that take one."""
    return {
        ("POST", "/api/v1/orgs"): {
            "json": {
                "parent_id": b["county_b"],
                "level": "enterprise",
                "name": "x",
                "enterprise_type": "canteen",
            }
        },
        ("PATCH", "/api/v1/orgs/{org_id}"): {"json": {"name": "taken over"}},
        ("POST", "/api/v1/orgs/{org_id}/move"): {"json": {"parent_id": b["county_b"]}},
        ("POST", "/api/v1/sites"): {"json": {"org_id": b["canteen_b"], "site_id": "evil"}},
        ("PATCH", "/api/v1/sites/{site_id}/cameras/{camera_id}"): {"json": {"name": "x"}},
        ("POST", "/api/v1/users"): {
            "json": {
                "username": "mole",
                "password": "mole-password-1",
                "role": "enterprise_staff",
                "org_id": b["canteen_b"],
            }
        },
        ("PATCH", "/api/v1/users/{user_id}"): {"json": {"disabled": True}},
        ("POST", "/api/v1/alerts/{alert_id}/transitions"): {"json": {"action": "close"}},
        ("POST", "/api/v1/webhooks"): {
            "json": {"org_id": b["county_b"], "url": "https://93.184.215.14/x"}
        },
        ("POST", "/api/v1/public-links"): {
            "json": {"org_id": b["canteen_b"], "cameras": ["demo-canteen-b/cam1"]}
        },
        ("POST", "/api/v1/video/exports"): {
            "json": {"site_id": b["site_id"], "camera_id": "cam1", "start": 1e9, "end": 1e9 + 60}
        },
        ("POST", "/api/v1/integrity/audits"): {"json": {"site_id": b["site_id"]}},
        ("POST", "/api/v1/orgs/{org_id}/inspections"): {"json": {"result": "compliant"}},
        ("GET", "/api/v1/alerts"): {"params": {"org_id": b["county_b"]}},
        ("GET", "/api/v1/orgs"): {"params": {"under": b["county_b"]}},
        ("GET", "/api/v1/sites"): {"params": {"org_id": b["county_b"]}},
        ("GET", "/api/v1/cameras"): {"params": {"site_id": "demo-canteen-b"}},
        ("GET", "/api/v1/reports"): {"params": {"org_id": b["county_b"]}},
    }


async def test_inspector_a_reaches_nothing_of_county_b(central: Central) -> None:
    b = await build_county_b(central)
    await central.event("demo-canteen-a", "cam1")  # A has data of its own
    targeted = bodies(b)
    checked = 0
    for route in central.client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path") or ""
        method = route.method
        if not path.startswith("/api/") or method == "HEAD":
            continue
        key = (method, path)
        if key in PUBLIC:
            continue
        params = re.findall(r"\{(\w+)\}", path)
        url = path.format(**{p: b[p] for p in params})
        kwargs = targeted.get(key, {})
        if key == ("POST", "/api/v1/alerts/{alert_id}/rectification"):
            resp = await submit_rectification(
                central, "inspector-a", b["alert_id"], "x", [jpeg_bytes()]
            )
            status, text = resp.status, await resp.text()
        else:
            status, body = await call(central, "inspector-a", method, url, **kwargs)
            text = (
                json.dumps(body, ensure_ascii=False)
                if not isinstance(body, bytes)
                else body.decode("utf-8", "replace")
            )
        checked += 1
        if key == ("POST", "/api/v1/auth/logout"):
            central.forget("inspector-a")
        if params:
            # 401 only for the edge media upload, which wants a site login.
            assert status in (401, 403, 404), f"{method} {url} gave {status}: {text[:200]}"
        elif key in targeted:
            assert status in (403, 404), f"{method} {url} gave {status}: {text[:200]}"
        else:
            assert key in SELF_ONLY or method == "GET", f"unclassified route {key}"
            assert status < 500, f"{method} {url} gave {status}"
            for marker in B_MARKERS:
                assert marker not in text, f"{method} {url} leaks {marker}: {text[:300]}"
    assert checked >= 30
    # Nothing of B changed.
    alert = await call(central, "inspector-b", "GET", f"/api/v1/alerts/{b['alert_id']}")
    assert alert[1]["state"] == "rectification_submitted"
    users = [u.username for u in central.svc.users.list_users(_everything())]
    assert "mole" not in users
    tokens = central.svc.sessions.list_tokens(_user_id(central, "inspector-b"))
    assert [t["name"] for t in tokens] == ["b-script"]


def _user_id(central: Central, username: str) -> int:
    return next(u.id for u in central.svc.users.list_users(_everything()) if u.username == username)


async def test_lists_show_own_county_only(central: Central) -> None:
    await central.event("demo-canteen-b", "cam1")
    a_alert = await central.event("demo-canteen-a", "cam1")
    status, page = await call(central, "inspector-a", "GET", "/api/v1/alerts")
    assert status == 200 and [x["id"] for x in page["items"]] == [a_alert]
    status, page = await call(central, "city-monitor", "GET", "/api/v1/alerts")
    assert page["total"] == 2
    status, page = await call(central, "staff-canteen-a", "GET", "/api/v1/alerts")
    assert page["total"] == 1
    status, page = await call(central, "staff-slaughter-a", "GET", "/api/v1/alerts")
    assert page["total"] == 0


async def test_alerts_of_an_unregistered_site_join_it_when_registered(central: Central) -> None:
    early = await central.event("late-site", "cam1")
    status, page = await call(central, "inspector-a", "GET", "/api/v1/alerts")
    assert page["total"] == 0
    status, page = await call(
        central, "admin", "GET", "/api/v1/alerts", params={"site_id": "late-site"}
    )
    assert [a["id"] for a in page["items"]] == [early]
    status, _ = await call(
        central,
        "admin",
        "POST",
        "/api/v1/sites",
        json={"org_id": central.seed["orgs"]["canteen_a"], "site_id": "late-site"},
    )
    assert status == 201
    status, page = await call(central, "inspector-a", "GET", "/api/v1/alerts")
    assert [a["id"] for a in page["items"]] == [early]
    status, page = await call(central, "inspector-b", "GET", "/api/v1/alerts")
    assert page["total"] == 0
