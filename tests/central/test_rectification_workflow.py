"""The whole rectification workflow through the API, with evidence photos, CSRF and audit."""

from __future__ import annotations

import time

import pytest
from central_support import Central, call, jpeg_bytes, submit_rectification

pytestmark = [pytest.mark.asyncio, pytest.mark.databases("sqlite", "postgres")]


async def test_whole_workflow_with_evidence(central: Central) -> None:
    alert_id = await central.event("demo-canteen-a", "cam1", severity="critical")
    path = f"/api/v1/alerts/{alert_id}"
    status, alert = await call(central, "inspector-a", "GET", path)
    assert status == 200 and alert["state"] == "new"
    assert alert["allowed_actions"] == ["acknowledge", "request_rectification", "close"]
    status, seen_by_staff = await call(central, "staff-canteen-a", "GET", path)
    assert seen_by_staff["allowed_actions"] == []
    status, err = await call(
        central, "inspector-a", "POST", f"{path}/transitions", json={"action": "close"}
    )
    assert status == 409 and "needs a note" in err["error"]["message"]  # a reason to close

    status, alert = await call(
        central, "inspector-a", "POST", f"{path}/transitions", json={"action": "acknowledge"}
    )
    assert status == 201 and alert["state"] == "acknowledged" and alert["acknowledged_at"]
    # Staff may not request, regulators may not submit.
    status, err = await call(
        central, "staff-canteen-a", "POST", f"{path}/transitions", json={"action": "close"}
    )
    assert status == 403 and "may not" in err["error"]["message"]
    status, err = await call(
        central,
        "inspector-a",
        "POST",
        f"{path}/transitions",
        json={"action": "request_rectification", "note": "hats"},
    )
    assert status == 409 and "deadline" in err["error"]["message"]
    deadline = time.time() + 2 * 86400
    status, alert = await call(
        central,
        "inspector-a",
        "POST",
        f"{path}/transitions",
        json={"action": "request_rectification", "note": "wear hats", "deadline": deadline},
    )
    assert alert["state"] == "rectification_requested" and alert["deadline"] == deadline

    resp = await submit_rectification(central, "staff-canteen-a", alert_id, "hats bought", [])
    assert resp.status == 400  # a rectification needs a photo
    resp = await submit_rectification(central, "staff-canteen-a", alert_id, "x", [b"not an image"])
    assert resp.status == 400
    photos = [jpeg_bytes(1), jpeg_bytes(2)]
    resp = await submit_rectification(central, "staff-canteen-a", alert_id, "hats bought", photos)
    assert resp.status == 201, await resp.text()
    alert = await resp.json()
    assert alert["state"] == "rectification_submitted"
    assert [e["bytes"] for e in alert["evidence"]] == [len(p) for p in photos]
    assert "path" not in alert["evidence"][0]

    status, photo = await call(
        central, "inspector-a", "GET", f"{path}/evidence/{alert['evidence'][1]['id']}"
    )
    assert status == 200 and photo == photos[1]

    status, alert = await call(
        central,
        "inspector-a",
        "POST",
        f"{path}/transitions",
        json={"action": "close", "note": "verified"},
    )
    assert alert["state"] == "closed" and alert["closed_at"]
    status, alert = await call(
        central,
        "city-monitor",
        "POST",
        f"{path}/transitions",
        json={"action": "reopen", "note": "seen again"},
    )
    assert alert["state"] == "reopened" and alert["closed_at"] is None

    history = [(t["username"], t["action"], t["to_state"]) for t in alert["transitions"]]
    assert history == [
        ("inspector-a", "acknowledge", "acknowledged"),
        ("inspector-a", "request_rectification", "rectification_requested"),
        ("staff-canteen-a", "submit_rectification", "rectification_submitted"),
        ("inspector-a", "close", "closed"),
        ("city-monitor", "reopen", "reopened"),
    ]
    # Where each step came from is the audit's business (admins): the enterprise does not
    # learn its inspectors' addresses, nor one regulator another's.
    assert all("ip" not in t and t["ts"] > 0 for t in alert["transitions"])
    for user in ("staff-canteen-a", "inspector-a"):
        status, seen = await call(central, user, "GET", path)
        assert status == 200 and all("ip" not in t for t in seen["transitions"])
    status, seen = await call(central, "admin", "GET", path)
    assert all(t["ip"] == "127.0.0.1" for t in seen["transitions"])
    status, log = await call(
        central, "admin", "GET", "/api/v1/audit", params={"action": "alert_transition"}
    )
    assert len(log["items"]) == 5 and log["next"] is None
    assert {e["detail"]["action"] for e in log["items"]} >= {"close", "submit_rectification"}


async def test_overdue_flag_and_filter(central: Central) -> None:
    alert_id = await central.event("demo-canteen-a")
    await central.token("inspector-a")  # signed in first: the deadline below is a second away
    status, _ = await call(
        central,
        "inspector-a",
        "POST",
        f"/api/v1/alerts/{alert_id}/transitions",
        json={"action": "request_rectification", "note": "fix", "deadline": time.time() + 1.0},
    )
    assert status == 201
    other = await central.event("demo-canteen-a")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status, page = await call(
            central, "inspector-a", "GET", "/api/v1/alerts", params={"overdue": "true"}
        )
        if page["total"]:
            break
    assert [a["id"] for a in page["items"]] == [alert_id] and page["items"][0]["overdue"]
    status, page = await call(
        central, "inspector-a", "GET", "/api/v1/alerts", params={"overdue": "false", "state": "new"}
    )
    assert [a["id"] for a in page["items"]] == [other]


async def test_cookie_session_needs_csrf_for_writes(central: Central) -> None:
    client = central.client
    resp = await client.post(
        "/api/v1/auth/login",
        json={"username": "inspector-a", "password": central.passwords["inspector-a"]},
    )
    assert resp.status == 200
    csrf = (await resp.json())["csrf_token"]
    assert (
        "HttpOnly" in resp.headers["Set-Cookie"] and "SameSite=Strict" in resp.headers["Set-Cookie"]
    )
    alert_id = await central.event("demo-canteen-a")
    url = f"/api/v1/alerts/{alert_id}/transitions"
    resp = await client.post(url, json={"action": "acknowledge"})
    assert resp.status == 403 and "X-CSRF-Token" in (await resp.json())["error"]["message"]
    resp = await client.post(url, json={"action": "acknowledge"}, headers={"X-CSRF-Token": "no"})
    assert resp.status == 403
    resp = await client.get("/api/v1/alerts")  # reads need no token
    assert resp.status == 200
    resp = await client.post(url, json={"action": "acknowledge"}, headers={"X-CSRF-Token": csrf})
    assert resp.status == 201
    resp = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert resp.status == 200
    assert (await client.get("/api/v1/alerts")).status == 401


async def test_errors_are_json_with_reason(central: Central) -> None:
    status, err = await call(
        central, "inspector-a", "GET", "/api/v1/alerts", params={"limit": "nope"}
    )
    assert status == 400 and "limit" in err["error"]["message"]
    status, err = await call(central, "admin", "POST", "/api/v1/orgs", data=b"{bad json")
    assert status == 400 and err["error"]["status"] == 400
    status, err = await call(central, "inspector-a", "GET", "/api/v1/alerts/nope")
    assert status == 404 and "not found" in err["error"]["message"]
    resp = await central.client.get("/api/v1/alerts")
    assert resp.status == 401 and (await resp.json())["error"]["status"] == 401


async def test_inbox_text_search_stays_in_scope(central: Central) -> None:
    mine = await central.event("demo-canteen-a", "cam1")
    await central.event("demo-canteen-b", "cam1")
    status, page = await call(central, "inspector-a", "GET", "/api/v1/alerts?text=第一小学")
    assert status == 200 and [a["id"] for a in page["items"]] == [mine]
    # The other county's canteen by name: nothing, not even a count.
    status, page = await call(central, "inspector-a", "GET", "/api/v1/alerts?text=中宁县")
    assert status == 200 and page["items"] == [] and page["total"] == 0
    status, page = await call(central, "inspector-b", "GET", "/api/v1/alerts?text=第一小学")
    assert page["total"] == 0
    # LIKE's wildcards are taken literally.
    status, page = await call(central, "inspector-a", "GET", "/api/v1/alerts?text=%25")
    assert status == 200 and page["total"] == 0
    status, page = await call(central, "inspector-a", "GET", "/api/v1/alerts?text=demo-canteen")
    assert [a["id"] for a in page["items"]] == [mine]
    # Any ASCII case, on either engine.
    status, page = await call(central, "inspector-a", "GET", "/api/v1/alerts?text=Demo-CANTEEN")
    assert [a["id"] for a in page["items"]] == [mine]
