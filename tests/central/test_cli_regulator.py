"""The regulator CLI: org tree, users and the demo seed, on a real database file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from central.cli import main
from central.regulation.scope import Scope
from central.regulation.users import UserStore
from central.schema import apply_migrations
from central.storage.db import CentralDatabase


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "central.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data")}))
    return str(path)


def test_org_tree_and_users(
    config_file: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = ["-c", config_file]
    assert main(["org", "add", *c, "--level", "province", "--name", "宁夏"]) == 0
    province = int(capsys.readouterr().out.strip())
    assert (
        main(["org", "add", *c, "--level", "city", "--name", "中卫", "--parent", str(province)])
        == 0
    )
    city = int(capsys.readouterr().out.strip())
    bad = ["org", "add", *c, "--level", "enterprise", "--name", "x", "--parent", str(province)]
    assert main([*bad, "--type", "canteen"]) == 1
    assert "hangs under a county" in capsys.readouterr().err
    monkeypatch.setenv("FSV_USER_PASSWORD", "admin-pass-123")
    assert main(["create-admin", *c, "root"]) == 0
    assert "user root (admin) created" in capsys.readouterr().out
    user = ["add-user", *c, "--role", "city_monitor", "--org", str(city)]
    assert main([*user, "cm", "--generate"]) == 0
    out = capsys.readouterr().out
    assert "user cm (city_monitor) created" in out and "password: fsv-" in out
    monkeypatch.setenv("FSV_USER_PASSWORD", "short")
    assert main([*user, "weak"]) == 1
    assert "at least 10 characters" in capsys.readouterr().err
    assert main(["org", "list", *c, "--json"]) == 0
    tree = json.loads(capsys.readouterr().out)["tree"]
    assert tree[0]["name"] == "宁夏" and tree[0]["children"][0]["name"] == "中卫"


def test_seed_demo_prints_working_credentials(
    config_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed-demo", "-c", config_file, "--json", "--site", "edge-demo=canteen_a"]) == 0
    result = json.loads(capsys.readouterr().out)
    roles = {u["role"] for u in result["users"]}
    assert roles == {"admin", "city_monitor", "county_inspector", "enterprise_staff"}
    assert result["sites"]["edge-demo"] == "canteen_a"
    database = CentralDatabase(tmp_path / "data" / "central.db")
    try:
        apply_migrations(database)
        users = UserStore(database)
        staff = next(u for u in result["users"] if u["username"] == "staff-canteen-a")
        assert users.authenticate(staff["username"], staff["password"]).org_path
        assert len(users.list_users(Scope.everything())) == 7
    finally:
        database.close()
    assert main(["seed-demo", "-c", config_file]) == 1  # not on a populated database


def test_site_via_api_issues_mqtt_credentials(tmp_path: Path) -> None:
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer
    from central_support import make_config

    from central.api.common import SERVICES
    from central.app import create_app
    from central.regulation.seed import seed_demo

    broker = {"password_file": str(tmp_path / "passwd"), "acl_file": str(tmp_path / "acl")}
    config = make_config(tmp_path, broker=broker)

    async def scenario() -> dict[str, object]:
        async with TestClient(TestServer(create_app(config))) as client:
            seed = await asyncio.to_thread(seed_demo, client.app[SERVICES])
            admin = next(u for u in seed["users"] if u.username == "admin")
            resp = await client.post(
                "/api/v1/auth/login",
                json={"username": "admin", "password": admin.password, "kind": "bearer"},
            )
            token = (await resp.json())["token"]
            resp = await client.post(
                "/api/v1/sites",
                json={"org_id": seed["orgs"]["canteen_a"], "site_id": "new-box"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert resp.status == 201, await resp.text()
            return dict(await resp.json())

    site = asyncio.run(scenario())
    assert site["mqtt"]["username"] == "new-box" and len(site["mqtt"]["password"]) > 20
    assert "new-box" in site["enrolment"]
    assert (tmp_path / "passwd").read_text().startswith("new-box:")
