"""Sessions end on the server (lifetime, idle, logout); API tokens are named, scoped, expiring,
listed, revocable by owner and admins, and every use is audited (first use per hour)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from central_support import Central, call

from central.errors import AuthError
from central.regulation.scope import Scope
from central.regulation.sessions import SessionPolicy, SessionStore, TokenUses


class Clock:
    """A settable clock for the store under test."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def _store(central: Central, clock: Clock, idle_s: float = 600) -> SessionStore:
    return SessionStore(central.svc.ldb, SessionPolicy(3600, idle_s, 90), clock)


def _user(central: Central, name: str) -> Any:
    return next(u for u in central.svc.users.list_users(Scope.everything()) if u.username == name)


@pytest.mark.asyncio
async def test_a_session_lives_as_configured_and_ends_when_idle(central: Central) -> None:
    clock = Clock()
    store = _store(central, clock)
    user = await asyncio.to_thread(_user, central, "inspector-a")
    token, _ = store.open_session(user, "cookie")
    for _ in range(4):  # steady use keeps it alive ...
        clock.now += 590
        assert store.resolve(token, "cookie").user.username == "inspector-a"
    clock.now += 700  # ... and a pause longer than the idle timeout ends it
    with pytest.raises(AuthError, match="inactivity"):
        store.resolve(token, "cookie")
    with pytest.raises(AuthError):  # ended for good, not only refused once
        store.resolve(token, "cookie")
    started = clock.now
    token, _ = store.open_session(user, "bearer")
    while clock.now + 590 < started + 3600:
        clock.now += 590
        store.resolve(token, "bearer")
    clock.now = started + 3601  # past the one-hour lifetime, however active
    with pytest.raises(AuthError, match="expired"):
        store.resolve(token, "bearer")


@pytest.mark.asyncio
async def test_server_side_lifetime_equals_web_session_hours(central: Central) -> None:
    creds = {"username": "inspector-a", "password": central.passwords["inspector-a"]}
    for kind in ("bearer", "cookie"):
        resp = await central.client.post("/api/v1/auth/login", json={**creds, "kind": kind})
        assert resp.status == 200
    rows = central.svc.ldb.db.query(
        "select kind, expires_at - created_at as ttl from user_sessions where purpose = 'session'"
    )
    ttls = {r["kind"]: r["ttl"] for r in rows}
    assert ttls == pytest.approx({"cookie": 12 * 3600, "bearer": 12 * 3600})


@pytest.mark.asyncio
async def test_logout_ends_the_session_on_the_server(central: Central) -> None:
    resp = await central.client.post(
        "/api/v1/auth/login",
        json={"username": "inspector-a", "password": central.passwords["inspector-a"]},
    )
    cookie = resp.cookies["fsv_session"].value
    csrf = (await resp.json())["csrf_token"]
    out = await central.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status == 200
    central.client.session.cookie_jar.clear()
    replay = await central.client.get("/api/v1/auth/me", cookies={"fsv_session": cookie})
    assert replay.status == 401  # the old cookie value is dead, not merely forgotten


async def _new_token(central: Central, user: str, **body: Any) -> tuple[int, Any]:
    return await call(
        central,
        user,
        "POST",
        "/api/v1/auth/tokens",
        json={"name": "nightly export", "password": central.passwords[user], **body},
    )


@pytest.mark.asyncio
async def test_tokens_need_the_password_and_are_named_scoped_and_expiring(
    central: Central,
) -> None:
    status, _ = await call(
        central, "inspector-a", "POST", "/api/v1/auth/tokens",
        json={"name": "x", "password": "not-my-password-1"},
    )  # fmt: skip
    assert status == 401
    status, _ = await _new_token(central, "inspector-a", days=400)
    assert status == 400
    status, read = await _new_token(central, "inspector-a")
    assert status == 201 and read["scope"] == "read" and read["name"] == "nightly export"
    assert 29.9 * 86400 < read["expires_at"] - read["created_at"] <= 30 * 86400
    status, full = await _new_token(central, "inspector-a", scope="full", days=90, name="bot")
    assert status == 201 and full["scope"] == "full"

    status, listed = await call(central, "inspector-a", "GET", "/api/v1/auth/tokens")
    assert status == 200
    assert {t["id"]: (t["name"], t["scope"]) for t in listed["items"]} == {
        read["id"]: ("nightly export", "read"),
        full["id"]: ("bot", "full"),
    }
    assert "token" not in str(listed["items"][0].keys())

    alert_id = await central.event("demo-canteen-a")
    path = f"/api/v1/alerts/{alert_id}/transitions"
    as_read = {"Authorization": f"Bearer {read['token']}"}
    assert (await central.client.get(path.rsplit("/", 1)[0], headers=as_read)).status == 200
    refused = await central.client.post(path, json={"action": "acknowledge"}, headers=as_read)
    assert refused.status == 403 and "read-only" in (await refused.json())["error"]["message"]
    as_full = {"Authorization": f"Bearer {full['token']}"}
    done = await central.client.post(path, json={"action": "acknowledge"}, headers=as_full)
    assert done.status == 201


@pytest.mark.asyncio
async def test_an_expired_token_is_refused(central: Central) -> None:
    clock = Clock()
    store = _store(central, clock)
    user = await asyncio.to_thread(_user, central, "inspector-a")
    token, info = store.create_token(user, "short", "read", 1)
    clock.now += 86400 - 1
    assert store.resolve(token, "bearer").purpose == "token"
    clock.now += 2
    with pytest.raises(AuthError):
        store.resolve(token, "bearer")
    assert info["id"] not in {t["id"] for t in store.list_tokens(user.id)}


@pytest.mark.asyncio
async def test_owner_and_admins_revoke_tokens_others_cannot(central: Central) -> None:
    _, mine = await _new_token(central, "inspector-a", scope="full")
    _, other = await _new_token(central, "inspector-a", name="second")
    uid = (await asyncio.to_thread(_user, central, "inspector-a")).id
    status, _ = await call(central, "inspector-b", "DELETE", f"/api/v1/auth/tokens/{mine['id']}")
    assert status == 404  # not B's token
    status, _ = await call(central, "inspector-b", "GET", f"/api/v1/users/{uid}/tokens")
    assert status in (403, 404)
    status, listed = await call(central, "admin", "GET", f"/api/v1/users/{uid}/tokens")
    assert status == 200 and {t["id"] for t in listed["items"]} == {mine["id"], other["id"]}

    status, _ = await call(central, "inspector-a", "DELETE", f"/api/v1/auth/tokens/{mine['id']}")
    assert status == 200
    gone = await central.client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {mine['token']}"}
    )
    assert gone.status == 401
    path = f"/api/v1/users/{uid}/tokens/{other['id']}"
    status, revoked = await call(central, "admin", "DELETE", path)
    assert status == 200 and revoked["name"] == "second"
    gone = await central.client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {other['token']}"}
    )
    assert gone.status == 401
    log = central.svc.audit.query(Scope.everything(), action="token_revoked")
    assert {e["username"] for e in log["items"]} == {"inspector-a", "admin"}


@pytest.mark.asyncio
async def test_token_use_is_audited_once_an_hour(central: Central) -> None:
    _, tok = await _new_token(central, "inspector-a")
    headers = {"Authorization": f"Bearer {tok['token']}"}
    for _ in range(3):
        assert (await central.client.get("/api/v1/alerts", headers=headers)).status == 200
    log = central.svc.audit.query(Scope.everything(), action="token_used")
    [entry] = log["items"]
    assert entry["username"] == "inspector-a" and entry["target"] == f"token:{tok['id']}"
    assert (
        entry["detail"]["name"] == "nightly export" and entry["detail"]["first"] == "/api/v1/alerts"
    )
    uses = TokenUses()
    assert uses.due("t1", 0.0) and not uses.due("t1", 3599.0) and uses.due("t1", 3601.0)


@pytest.mark.asyncio
async def test_token_routes_are_in_the_openapi_document(central: Central) -> None:
    doc = await (await central.client.get("/api/openapi.json")).json()
    paths = doc["paths"]
    assert {"post", "get"} <= set(paths["/api/v1/auth/tokens"])
    assert "delete" in paths["/api/v1/auth/tokens/{token_id}"]
    assert "get" in paths["/api/v1/users/{user_id}/tokens"]
    assert "delete" in paths["/api/v1/users/{user_id}/tokens/{token_id}"]


def test_tokens_from_before_the_upgrade_are_capped_and_listed(tmp_path: Any) -> None:
    import sqlite_utils

    from central.schema import migrations

    db = sqlite_utils.Database(tmp_path / "old.db")
    migrations.apply(db, stop_before="m008_api_tokens")
    db.table("users").insert(
        {"id": 1, "username": "old", "role": "admin", "password_hash": "x", "created_at": 0.0}
    )
    t0 = 1_800_000_000.0
    for digest, kind, label in (("a", "bearer", "script"), ("b", "bearer", "login"),
                                ("c", "cookie", "login")):  # fmt: skip
        db.table("user_sessions").insert(
            {"token_hash": digest, "user_id": 1, "kind": kind, "label": label, "csrf": "x",
             "created_at": t0, "expires_at": t0 + 365 * 86400, "last_used_at": t0}
        )  # fmt: skip
    migrations.apply(db)
    rows = {r["token_hash"]: r for r in db.query("select * from user_sessions")}
    assert rows["a"]["purpose"] == "token" and rows["a"]["scope"] == "full"
    assert rows["a"]["expires_at"] == t0 + 90 * 86400  # a year-long token now ends in 90 days
    assert rows["b"]["purpose"] == rows["c"]["purpose"] == "session"
    ids = {r["token_id"] for r in rows.values()}
    assert len(ids) == 3 and all(len(i) == 16 for i in ids)
