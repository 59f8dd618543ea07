"""The administration API behind the admin pages: grants, user edits, moving an organisation,
new site credentials; each within the caller's scope and audited."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from central_support import Central, call, make_config

from central.api.common import SERVICES
from central.app import create_app
from central.regulation.scope import Scope
from central.regulation.seed import seed_demo

pytestmark = pytest.mark.asyncio
ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest_asyncio.fixture
async def brokered(
    aiohttp_client: ClientFactory, tmp_path: Path, central_db_url: str | None
) -> Central:
    """The demo app with the broker admin section: site credentials go to a real password
    file through mosquitto_passwd (the broker itself is not needed to check them)."""
    auth = tmp_path / "auth"
    config = make_config(
        tmp_path,
        database=central_db_url,
        broker={"password_file": str(auth / "passwd"), "acl_file": str(auth / "acl")},
    )
    client = await aiohttp_client(create_app(config))
    seed = await asyncio.to_thread(seed_demo, client.app[SERVICES])
    central = Central(client, seed)
    central.passwd = auth / "passwd"  # type: ignore[attr-defined]
    return central


def _broker_accepts(passwd: Path, user: str, password: str) -> bool:
    """True if the broker's password file holds `password` for `user` (mosquitto's $7$ hash)."""
    for line in passwd.read_text().splitlines():
        name, _, encoded = line.partition(":")
        if name != user:
            continue
        _, kind, rounds, salt, digest = encoded.split("$")
        assert kind == "7"
        mine = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(rounds))
        return base64.b64encode(mine).decode() == digest
    return False


async def _log(central: Central, action: str) -> list[dict[str, Any]]:
    _, log = await call(central, "admin", "GET", "/api/v1/audit", params={"action": action})
    return list(log["items"])


async def test_grants_and_validation_name_the_field(central: Central) -> None:
    status, roles = await call(central, "admin", "GET", "/api/v1/users/roles")
    assert status == 200
    assert roles["items"] == [
        {"role": "admin", "level": None},
        {"role": "city_monitor", "level": "city"},
        {"role": "county_inspector", "level": "county"},
        {"role": "enterprise_staff", "level": "enterprise"},
    ]
    for who in ("inspector-a", "staff-canteen-a", "city-monitor"):
        assert (await call(central, who, "GET", "/api/v1/users/roles"))[0] == 403
    orgs = central.seed["orgs"]
    bad = {
        "username": ({"username": "a b", "password": "long-enough-1"}, "username:"),
        "password": ({"username": "new-one", "password": "short"}, "password:"),
        "weak": ({"username": "new-one", "password": "onlyletterss"}, "password:"),
        "level": ({"username": "new-one", "password": "long-enough-1", "org_id": orgs["city"]},
                  "org_id:"),
        "taken": ({"username": "inspector-b", "password": "long-enough-1",
                   "org_id": orgs["county_a"]}, "username:"),
    }  # fmt: skip
    for name, (body, field) in bad.items():
        status, err = await call(
            central, "admin", "POST", "/api/v1/users", json={"role": "county_inspector", **body}
        )
        assert status in (400, 409), (name, err)
        assert field in err["error"]["message"], (name, err)
    users = (await call(central, "admin", "GET", "/api/v1/users"))[1]["items"]
    assert "new-one" not in {u["username"] for u in users}  # nothing half-made
    assert all(u["disabled"] is False for u in users)


async def test_admin_edits_a_user_and_never_itself(central: Central) -> None:
    orgs = central.seed["orgs"]
    users = {u.username: u for u in central.svc.users.list_users(Scope.everything())}
    target = users["inspector-b"].id
    old_session = await central.token("inspector-b")
    status, _ = await call(
        central, "admin", "PATCH", f"/api/v1/users/{target}", json={"display_name": "B 县"}
    )
    assert status == 200  # a new name leaves the user signed in
    assert (await central.client.get("/api/v1/auth/me", headers=old_session)).status == 200
    status, changed = await call(
        central,
        "admin",
        "PATCH",
        f"/api/v1/users/{target}",
        json={"display_name": "中卫市监控员", "role": "city_monitor", "org_id": orgs["city"]},
    )
    assert status == 200, changed
    assert changed["role"] == "city_monitor" and changed["display_name"] == "中卫市监控员"
    # The county's session ends with the new role: county B's scope does not linger.
    assert (await central.client.get("/api/v1/auth/me", headers=old_session)).status == 401
    assert (
        changed["org_path"]
        == central.svc.orgs.get_org(Scope.everything(), orgs["city"])["org_path"]
    )
    # The role needs a city: a county is refused, and the user stays as it was.
    status, err = await call(
        central,
        "admin",
        "PATCH",
        f"/api/v1/users/{target}",
        json={"role": "city_monitor", "org_id": orgs["county_b"]},
    )
    assert status == 400 and err["error"]["message"].startswith("org_id:")
    assert central.svc.users.get_user(Scope.everything(), target).role.value == "city_monitor"
    # Nobody disables themselves or changes their own role.
    me = users["admin"].id
    for body in ({"disabled": True}, {"role": "city_monitor", "org_id": orgs["city"]}):
        status, _ = await call(central, "admin", "PATCH", f"/api/v1/users/{me}", json=body)
        assert status == 409
    status, off = await call(
        central, "admin", "PATCH", f"/api/v1/users/{target}", json={"disabled": True}
    )
    assert status == 200 and off["disabled"] is True
    # The move is written where the user was and where the user is now.
    entries = [e for e in await _log(central, "user_update") if e["target"] == f"user:{target}"]
    assert {e["org_path"] for e in entries} >= {
        users["inspector-b"].org_path,
        changed["org_path"],
    }
    assert any(e["detail"].get("role") == "city_monitor" for e in entries)


async def test_a_county_admin_manages_its_county_only(central: Central) -> None:
    orgs = central.seed["orgs"]
    status, _ = await call(
        central,
        "admin",
        "POST",
        "/api/v1/users",
        json={"username": "admin-a", "password": "county-admin-1", "role": "admin",
              "org_id": orgs["county_a"]},
    )  # fmt: skip
    assert status == 201
    central.passwords["admin-a"] = "county-admin-1"
    listed = (await call(central, "admin-a", "GET", "/api/v1/users"))[1]["items"]
    assert {u["username"] for u in listed} == {"inspector-a", "staff-canteen-a",
                                               "staff-slaughter-a", "admin-a"}  # fmt: skip
    others = {u.username: u.id for u in central.svc.users.list_users(Scope.everything())}
    for path, method, body in (
        (f"/api/v1/users/{others['inspector-b']}", "PATCH", {"disabled": True}),
        (f"/api/v1/users/{others['admin']}", "PATCH", {"password": "taken-over-12"}),
        (f"/api/v1/orgs/{orgs['canteen_a']}/move", "POST", {"parent_id": orgs["county_b"]}),
        (f"/api/v1/orgs/{orgs['canteen_b']}/move", "POST", {"parent_id": orgs["county_a"]}),
        ("/api/v1/sites/demo-canteen-b/credentials", "POST", None),
    ):
        status, _ = await call(central, "admin-a", method, path, json=body)
        assert status == 404, path
    status, _ = await call(
        central,
        "admin-a",
        "POST",
        "/api/v1/users",
        json={"username": "x-b", "password": "county-admin-1", "role": "county_inspector",
              "org_id": orgs["county_b"]},
    )  # fmt: skip
    assert status == 404
    status, err = await call(
        central,
        "admin-a",
        "POST",
        "/api/v1/users",
        json={"username": "top", "password": "county-admin-1", "role": "admin"},
    )
    assert status == 400 and err["error"]["message"].startswith("org_id:")
    # Inspectors and staff manage nothing, even in their own subtree.
    for who in ("inspector-a", "staff-canteen-a"):
        status, _ = await call(
            central, who, "POST", f"/api/v1/orgs/{orgs['canteen_a']}/move",
            json={"parent_id": orgs["county_a"]},
        )  # fmt: skip
        assert status == 403
        status, _ = await call(
            central, who, "PATCH", f"/api/v1/users/{others['staff-canteen-a']}",
            json={"display_name": "x"},
        )  # fmt: skip
        assert status == 403


async def test_moving_an_enterprise_takes_its_sites_alerts_and_staff(central: Central) -> None:
    orgs = central.seed["orgs"]
    alert_id = await central.event("demo-canteen-a", "cam1")
    before = len((await call(central, "inspector-b", "GET", "/api/v1/sites"))[1]["items"])
    status, moved = await call(
        central,
        "admin",
        "POST",
        f"/api/v1/orgs/{orgs['canteen_a']}/move",
        json={"parent_id": orgs["county_b"]},
    )
    assert status == 200, moved
    county_b = central.svc.orgs.get_org(Scope.everything(), orgs["county_b"])
    assert moved["parent_id"] == orgs["county_b"]
    assert moved["org_path"] == f"{county_b['org_path']}{orgs['canteen_a']}/"
    assert (await call(central, "inspector-a", "GET", f"/api/v1/alerts/{alert_id}"))[0] == 404
    assert (await call(central, "inspector-b", "GET", f"/api/v1/alerts/{alert_id}"))[0] == 200
    # The daily alert rollup moved with the alerts: each path counts its own alerts once.
    with central.svc.ldb.read() as db:
        rolled = dict(
            db.execute(
                "select org_path, sum(n) from alert_days group by org_path having sum(n) > 0"
            ).fetchall()
        )
        counted = dict(
            db.execute("select org_path, count(*) from alerts group by org_path").fetchall()
        )
    assert rolled == counted and moved["org_path"] in rolled
    sites_b = (await call(central, "inspector-b", "GET", "/api/v1/sites"))[1]["items"]
    assert len(sites_b) == before + 1 and "demo-canteen-a" in {s["id"] for s in sites_b}
    cams = (await call(central, "inspector-b", "GET", "/api/v1/cameras"))[1]["items"]
    assert {c["site_id"] for c in cams} >= {"demo-canteen-a"}
    # The enterprise's staff still see their own site, now under the other county.
    status, site = await call(central, "staff-canteen-a", "GET", "/api/v1/sites/demo-canteen-a")
    assert status == 200 and site["org_path"] == moved["org_path"]
    entries = await _log(central, "org_move")
    assert len(entries) == 2 and {e["org_path"] for e in entries} == {
        moved["org_path"],
        entries[0]["detail"]["from"],
    }
    # A province has no parent; an enterprise does not hang under a city.
    for org, parent in ((orgs["province"], orgs["province"]), (orgs["canteen_b"], orgs["city"])):
        status, err = await call(
            central, "admin", "POST", f"/api/v1/orgs/{org}/move", json={"parent_id": parent}
        )
        assert status == 400 and err["error"]["message"].startswith("parent_id:"), err


async def test_new_site_credentials_replace_the_old_and_are_audited(brokered: Central) -> None:
    passwd: Path = brokered.passwd  # type: ignore[attr-defined]
    orgs = brokered.seed["orgs"]
    status, site = await call(
        brokered,
        "admin",
        "POST",
        "/api/v1/sites",
        json={"org_id": orgs["canteen_a"], "site_id": "new-box", "name": "新食堂后厨"},
    )
    assert status == 201
    first = site["mqtt"]["password"]
    assert _broker_accepts(passwd, "new-box", first)
    assert set(site["files"]) == {"new-box.edge.yaml", "new-box.credentials.yaml"}
    assert first in site["files"]["new-box.credentials.yaml"]
    assert first not in site["files"]["new-box.edge.yaml"]
    status, again = await call(brokered, "admin", "POST", "/api/v1/sites/new-box/credentials")
    assert status == 200 and again["id"] == "new-box"
    second = again["mqtt"]["password"]
    assert second != first
    assert _broker_accepts(passwd, "new-box", second)
    assert not _broker_accepts(passwd, "new-box", first)
    for who in ("inspector-a", "staff-canteen-a"):
        status, _ = await call(brokered, who, "POST", "/api/v1/sites/new-box/credentials")
        assert status == 403
    assert _broker_accepts(passwd, "new-box", second)
    [entry] = await _log(brokered, "site_credentials_reset")
    assert entry["target"] == "site:new-box" and entry["username"] == "admin"
    assert second not in str(entry)  # the password never reaches the log


async def test_without_a_broker_section_new_credentials_are_refused(central: Central) -> None:
    status, err = await call(central, "admin", "POST", "/api/v1/sites/demo-canteen-a/credentials")
    assert status == 409 and "broker" in err["error"]["message"]
    assert await _log(central, "site_credentials_reset") == []
