"""Login throttling, the audit entries of each audited action, and the append-only log."""

from __future__ import annotations

import sqlite3

import pytest
from central_support import Central, call, jpeg_bytes, submit_rectification

from central.regulation.audit import AUDITED_ACTIONS, SYSTEM_ACTIONS

pytestmark = pytest.mark.asyncio


async def test_brute_force_login_is_throttled(central: Central) -> None:
    client = central.client
    for _ in range(5):
        resp = await client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": "guess-123456"}
        )
        assert resp.status == 401
    resp = await client.post(
        "/api/v1/auth/login",
        json={"username": "admin", "password": central.passwords["admin"]},
    )
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
    # Another account from the same address is not held back by these five failures.
    resp = await client.post(
        "/api/v1/auth/login",
        json={"username": "inspector-a", "password": central.passwords["inspector-a"]},
    )
    assert resp.status == 200
    log = central.svc.audit.query(_everything(), action="login_failed")  # type: ignore[arg-type]
    reasons = [e["detail"]["reason"] for e in log["items"]]
    assert reasons.count("bad credentials") == 5 and reasons.count("throttled") == 1


async def test_unknown_user_and_disabled_user(central: Central) -> None:
    resp = await central.client.post(
        "/api/v1/auth/login", json={"username": "nobody", "password": "x" * 12}
    )
    assert resp.status == 401
    users = {u.username: u.id for u in central.svc.users.list_users(_everything())}
    headers = await central.token("inspector-a")
    status, _ = await call(
        central, "admin", "PATCH", f"/api/v1/users/{users['inspector-a']}", json={"disabled": True}
    )
    assert status == 200
    resp = await central.client.get("/api/v1/auth/me", headers=headers)
    assert resp.status == 401


def _everything() -> object:
    from central.regulation.scope import Scope

    return Scope.everything()


async def test_each_audited_action_writes_an_entry(central: Central) -> None:
    orgs = central.seed["orgs"]
    await central.client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": "bad-pass"}
    )
    h = await central.token("admin")
    _, api_token = await call(
        central,
        "admin",
        "POST",
        "/api/v1/auth/tokens",
        json={"name": "script", "password": central.passwords["admin"]},
    )
    by_token = {"Authorization": f"Bearer {api_token['token']}"}
    assert (await central.client.get("/api/v1/auth/me", headers=by_token)).status == 200
    status, _ = await call(central, "admin", "DELETE", f"/api/v1/auth/tokens/{api_token['id']}")
    assert status == 200
    assert (await central.client.get("/api/v1/auth/me", headers=by_token)).status == 401
    _, org = await call(
        central,
        "admin",
        "POST",
        "/api/v1/orgs",
        json={
            "parent_id": orgs["county_a"],
            "level": "enterprise",
            "name": "新食堂",
            "enterprise_type": "canteen",
        },
    )
    await call(central, "admin", "PATCH", f"/api/v1/orgs/{org['id']}", json={"phone": "1"})
    await call(
        central,
        "admin",
        "POST",
        f"/api/v1/orgs/{org['id']}/move",
        json={"parent_id": orgs["county_b"]},
    )
    await call(
        central, "admin", "POST", "/api/v1/sites", json={"org_id": org["id"], "site_id": "s9"}
    )
    alert_id = await central.event("demo-canteen-a", "cam1")
    await call(
        central,
        "admin",
        "PATCH",
        "/api/v1/sites/demo-canteen-a/cameras/cam1",
        json={"name": "后厨 1"},
    )
    _, user = await call(
        central,
        "admin",
        "POST",
        "/api/v1/users",
        json={
            "username": "new-staff",
            "password": "new-staff-pw-1",
            "role": "enterprise_staff",
            "org_id": org["id"],
        },
    )
    await call(central, "admin", "PATCH", f"/api/v1/users/{user['id']}", json={"disabled": True})
    await call(
        central,
        "inspector-a",
        "POST",
        f"/api/v1/alerts/{alert_id}/transitions",
        json={"action": "request_rectification", "note": "n", "deadline_days": 30},
    )
    resp = await submit_rectification(central, "staff-canteen-a", alert_id, "ok", [jpeg_bytes()])
    evidence = (await resp.json())["evidence"][0]["id"]
    await call(central, "inspector-a", "GET", f"/api/v1/alerts/{alert_id}/evidence/{evidence}")
    _, hook = await call(
        central,
        "admin",
        "POST",
        "/api/v1/webhooks",
        json={"org_id": orgs["city"], "url": "https://93.184.215.14/h"},
    )
    await call(central, "admin", "PATCH", f"/api/v1/webhooks/{hook['id']}", json={"enabled": False})
    await call(central, "admin", "GET", "/api/v1/audit", params={"format": "csv"})
    await call(central, "admin", "DELETE", f"/api/v1/webhooks/{hook['id']}")
    _, link = await call(
        central,
        "staff-canteen-a",
        "POST",
        "/api/v1/public-links",
        json={"org_id": orgs["canteen_a"], "cameras": ["demo-canteen-a/cam1"]},
    )
    await call(central, "staff-canteen-a", "DELETE", f"/api/v1/public-links/{link['id']}")
    await call(
        central,
        "inspector-a",
        "POST",
        "/api/v1/push/subscriptions",
        json={
            "endpoint": "https://93.184.215.14/p",
            "keys": {"p256dh": "x" * 87, "auth": "y" * 22},
        },
    )
    await call(central, "inspector-a", "GET", "/api/v1/reports")
    await call(
        central,
        "inspector-a",
        "PUT",
        f"/api/v1/alerts/{alert_id}/label",
        json={"verdict": "false", "boxes": []},
    )
    await call(
        central,
        "admin",
        "PUT",
        "/api/v1/sites/demo-canteen-a/class-map",
        json={"classes": ["person", "no_chef_hat"]},
    )
    await call(
        central,
        "inspector-a",
        "POST",
        f"/api/v1/orgs/{central.seed['orgs']['canteen_a']}/inspections",
        json={"result": "compliant", "rating": "good"},
    )
    await central.client.post("/api/v1/auth/logout", headers=h)
    central.forget("admin")

    status, log = await call(central, "admin", "GET", "/api/v1/audit", params={"limit": 1000})
    assert status == 200
    seen = {e["action"] for e in log["items"]}
    # Live view, replay and clip export are written by the video routes; the clip export of
    # an alert's own clip is covered in test_media_export; central's own entries (tamper
    # findings, refused evidence, integrity audits) in tests/central/test_integrity_*.
    # Model installs and rollbacks need a broker: tests/system/test_models_rollout.py; so
    # do new site credentials: tests/central/test_admin_api.py.
    # A public link's video views: tests/central/test_public_view.py.
    # A webhook test sends a real request: test_admin_tools does it to a local receiver.
    # Sample frames are asked of an edge and labelled: tests/central/test_models_samples.py.
    expected = set(AUDITED_ACTIONS) - {
        "site_credentials_reset",
        "webhook_test",
        "sample_request",
        "sample_label",
        "live_view",
        "public_view",
        "replay",
        "clip_export",
        "model_install",
        "model_rollback",
        *SYSTEM_ACTIONS,
    }
    assert expected <= seen, expected - seen
    entry = next(e for e in log["items"] if e["action"] == "user_update")
    assert entry["username"] == "admin" and entry["ip"] == "127.0.0.1"
    assert entry["detail"] == {"password_reset": False, "disabled": True}
    status, _ = await call(central, "inspector-a", "GET", "/api/v1/audit")
    assert status == 403
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        with central.svc.ldb.transaction() as db:
            db.execute("delete from audit_log")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        with central.svc.ldb.transaction() as db:
            db.execute("update audit_log set username = 'x'")
