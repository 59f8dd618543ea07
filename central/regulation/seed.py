"""A sample organisation tree with one user per role, for demos and tests."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from central.errors import ConflictError
from central.regulation.scope import Scope
from central.services import Services


@dataclass(frozen=True)
class DemoUser:
    """A created account and its password (shown once)."""

    username: str
    password: str
    role: str
    org: str


def demo_password() -> str:
    """A random password that passes the strength rules."""
    return f"fsv-{secrets.token_urlsafe(12)}"


def seed_demo(svc: Services, sites: dict[str, str] | None = None) -> dict[str, Any]:
    """Create province → city → two counties → enterprises and sites, and users of every role.

    `sites` maps extra site ids to the enterprise key they belong to (`canteen_a`,
    `slaughter_a`, `canteen_b`), e.g. the demo agent's site. Returns the ids and credentials.
    """
    if svc.orgs.list_orgs(Scope.everything()):
        raise ConflictError("the organisation tree is not empty; seed-demo runs on a new database")
    every = Scope.everything()
    org = svc.orgs.create_org
    province = org(every, None, "province", name="宁夏回族自治区 Ningxia")
    city = org(every, province["id"], "city", name="中卫市 Zhongwei")
    county_a = org(every, city["id"], "county", name="沙坡头区 Shapotou")
    county_b = org(every, city["id"], "county", name="中宁县 Zhongning")
    enterprises = {
        "canteen_a": org(every, county_a["id"], "enterprise", name="中卫市第一小学食堂",
                         enterprise_type="canteen", address="中卫市沙坡头区文萃路 1 号",
                         licence_no="JY36405020000001", contact="王经理 0955-0000001",
                         public_info="食堂负责人：王经理 · 投诉电话 12315"),
        "slaughter_a": org(every, county_a["id"], "enterprise", name="沙坡头定点屠宰厂",
                           enterprise_type="slaughterhouse", address="中卫市沙坡头区工业园",
                           licence_no="A64050201", contact="李厂长 0955-0000002"),
        "canteen_b": org(every, county_b["id"], "enterprise", name="中宁县第二中学食堂",
                         enterprise_type="canteen", address="中宁县宁安镇", licence_no="JY3640521",
                         contact="赵经理 0955-0000003"),
    }  # fmt: skip
    wanted = {"demo-canteen-a": "canteen_a", "demo-slaughter-a": "slaughter_a",
              "demo-canteen-b": "canteen_b", **(sites or {})}  # fmt: skip
    for site_id, key in wanted.items():
        svc.orgs.create_site(every, enterprises[key]["id"], site_id, site_id)
    accounts = [
        ("admin", "admin", None, "—"),
        ("city-monitor", "city_monitor", city, city["name"]),
        ("inspector-a", "county_inspector", county_a, county_a["name"]),
        ("inspector-b", "county_inspector", county_b, county_b["name"]),
        ("staff-canteen-a", "enterprise_staff", enterprises["canteen_a"], "中卫市第一小学食堂"),
        ("staff-slaughter-a", "enterprise_staff", enterprises["slaughter_a"], "沙坡头定点屠宰厂"),
        ("staff-canteen-b", "enterprise_staff", enterprises["canteen_b"], "中宁县第二中学食堂"),
    ]
    users = []
    for username, role, home, label in accounts:
        password = demo_password()
        svc.users.create_user(
            every,
            username=username,
            password=password,
            role=role,
            org_id=home["id"] if home else None,
        )
        users.append(DemoUser(username, password, role, label))
    return {
        "orgs": {"province": province["id"], "city": city["id"], "county_a": county_a["id"],
                 "county_b": county_b["id"], **{k: v["id"] for k, v in enterprises.items()}},
        "sites": wanted,
        "users": users,
    }  # fmt: skip
