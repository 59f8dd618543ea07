"""Central's administration pages in headless Chromium: users, the organisation tree, sites
and their enrolment, used by an administrator and refused to everyone else.

One walk (admin_pages.mjs) against a real broker and central at 1920×1080, 1440×900 and
390×844; the tests check what the people in it saw, the API's record of what they did, and
that the broker takes the credentials the page handed out. Screenshots stay in
/tmp/fsv-admin-pages.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from regulator_system import RegulatorSystem
from video_system import SITE, running, wait_until
from walks import Walk

from fsv_contract import AgentStatePayload, encode, topics

pytestmark = pytest.mark.slow
SHOTS = Path("/tmp/fsv-admin-pages")
NEW_USER = {
    "username": "inspector-c",
    "displayName": "王检查员",
    "password": "county-c-2026",
    "county": "中宁县",
}
NEW_SITE = {"id": "zn-school-2", "name": "中宁二中后厨", "enterprise": "中宁县第二中学食堂"}
NEW_ORG = "中卫市第三小学食堂"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, walk: Walk) -> Iterator[dict[str, Any]]:
    """Start broker and central, walk the administration pages once."""
    with running(RegulatorSystem(tmp_path_factory.mktemp("admin"))) as system:
        # One site's agent reports itself online, the way an edge does (retained, its login).
        online = AgentStatePayload(state="online", since=datetime.now(UTC))
        system._publish(topics.agent_state(SITE), encode(online), retain=True)
        wait_until(
            lambda: any(
                s["id"] == SITE and s["agent_state"] == "online"
                for s in system.api("GET", "/api/v1/sites", user="admin")["items"]
            ),
            20,
            "central to see the agent online",
        )
        orgs = {o["name"]: o for o in system.api("GET", "/api/v1/orgs", user="admin")["items"]}
        SHOTS.mkdir(exist_ok=True)
        options = {
            "url": system.url,
            "users": system.users,
            "shots": str(SHOTS),
            "newUser": NEW_USER,
            "newSite": NEW_SITE,
            "newOrg": NEW_ORG,
            "countyB": orgs["中宁县 Zhongning"]["id"],
        }
        seen = walk("admin_pages.mjs", options, timeout=240)
        (SHOTS / "seen.json").write_text(json.dumps(seen, ensure_ascii=False, indent=1))
        assert system.broker is not None
        system.broker.reload()  # the broker re-reads the password file central wrote
        broker = {
            password: _broker_accepts(system.broker.port, NEW_SITE["id"], password)
            for password in (seen["sites"]["bundle"]["password"], seen["sites"]["rotated"])
        }
        audit = system.api("GET", "/api/v1/audit?limit=500", user="admin")
        yield {"seen": seen, "broker": broker, "audit": audit["items"], "system": system}


def _broker_accepts(port: int, username: str, password: str) -> bool:
    """True if the broker lets `username` in with `password` (a real MQTT CONNECT)."""
    answer: dict[str, Any] = {}
    answered = threading.Event()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"{username}-{uuid.uuid4().hex[:6]}"
    )
    client.username_pw_set(username, password)

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        answer["reason"] = reason
        answered.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        assert answered.wait(10), "the broker did not answer the CONNECT"
    finally:
        client.loop_stop()
        client.disconnect()
    return not answer["reason"].is_failure


def test_no_errors_overflow_or_untranslated_text_at_any_size(world: dict[str, Any]) -> None:
    seen = world["seen"]
    assert seen["problems"] == []
    audits = seen["audits"]
    assert len(audits) >= 20
    for where, a in audits.items():
        assert a["scrollWidth"] <= a["innerWidth"], (where, a)  # no sideways scroll
        assert a["headerHeight"] <= 56, (where, a)  # the header is one row
        assert a["dialogInside"] in (None, True), (where, a)
        assert a["missing"] == [] and not a["placeholders"], (where, a)
        if not where.split("/")[1].endswith("-en"):
            assert a["lang"] == "zh-CN" and a["rawIds"] == [], (where, a)
        assert (SHOTS / f"{where.replace('/', '-')}.png").stat().st_size > 5_000
    for size in ("wall", "desktop", "phone"):
        for page in ("users", "orgs", "sites"):
            assert f"admin/{page}/{size}" in audits


def test_admin_creates_a_user_who_then_signs_in(world: dict[str, Any]) -> None:
    users = world["seen"]["users"]
    assert users["menu"][-1] == "/admin"
    assert users["tabs"] == [
        *("用户与角色", "组织机构", "站点与接入"),
        *("公开链接", "推送机器人", "审计日志"),
    ]
    assert users["roles"] == ["全部", "系统管理员", "市级监控中心", "县级监管员", "企业人员"]
    rows = {r[0]: r for r in users["rows"]}
    assert rows["inspector-a"][2] == "县级监管员" and "沙坡头区" in rows["inspector-a"][3]
    assert rows["inspector-a"][4] == "启用"
    assert set(users["searched"]) == {"inspector-a", "inspector-b"}
    # A county inspector is offered counties only.
    assert users["orgChoices"] and all("县" in c or "区" in c for c in users["orgChoices"])
    assert users["pageChecks"] == {"username": "必填", "password": "至少 10 个字符"}
    assert users["serverChecks"] == {"password": "密码不能全为字母或全为数字"}
    assert users["created"][:3] == ["inspector-c", "王检查员", "县级监管员"]
    assert "中宁县" in users["created"][3] and users["created"][4] == "启用"
    assert users["selfRow"].strip().endswith("本人")
    fresh = world["seen"]["fresh"]
    # The new inspector's administration entry holds public links only.
    assert fresh["who"] == "王检查员 · 县级监管员" and fresh["menu"][-1] == "/admin"
    # Disabled through the page's own dialog: the row says so and the open session ends.
    assert fresh["question"] == "停用用户 inspector-c？其登录将立即失效。"
    assert fresh["row"] == ["已停用", "启用"] and fresh["after"] == 401
    assert fresh["landed"] == "/login"  # the page itself went to the login form
    [entry] = [e for e in world["audit"] if e["action"] == "user_create"]
    assert entry["username"] == "admin" and entry["detail"]["username"] == "inspector-c"
    [off] = [e for e in world["audit"] if e["action"] == "user_update"]
    assert off["detail"] == {"password_reset": False, "disabled": True}
    assert "county-c-2026" not in json.dumps(world["audit"], ensure_ascii=False)


def test_org_tree_adds_and_moves_an_enterprise(world: dict[str, Any]) -> None:
    orgs = world["seen"]["orgs"]
    tree = {row[0]: row for row in orgs["county"]["tree"]}
    assert tree["宁夏回族自治区 Ningxia"][1] == "省" and tree["中卫市 Zhongwei"][1] == "市"
    assert tree["沙坡头区 Shapotou"][1] == "县（区）" and tree["沙坡头区 Shapotou"][2] == "1/2 在线"
    assert (
        orgs["county"]["name"] == "沙坡头区 Shapotou" and orgs["county"]["addChild"] == "新建企业"
    )
    assert sorted(s[0] for s in orgs["county"]["sites"]) == ["demo-canteen-a", "demo-slaughter-a"]
    # demo-canteen-a's agent said it is online; the slaughterhouse's never reported.
    assert {s[0]: s[3] for s in orgs["county"]["sites"]} == {
        "demo-canteen-a": "在线",
        "demo-slaughter-a": "未知",
    }
    assert orgs["orgChecks"] == {"enterprise_type": "请选择"}
    assert orgs["created"]["name"] == NEW_ORG and orgs["created"]["level"] == "企业 · 学校食堂"
    assert orgs["parents"][1:] == ["中卫市 Zhongwei › 中宁县 Zhongning"]
    assert orgs["moved"].startswith(
        "宁夏回族自治区 Ningxia › 中卫市 Zhongwei › 中宁县 Zhongning › "
    )
    moves = [e for e in world["audit"] if e["action"] == "org_move"]
    assert len(moves) == 2 and moves[0]["detail"]["from"] != moves[0]["detail"]["to"]
    system: RegulatorSystem = world["system"]
    new = [o for o in system.api("GET", "/api/v1/orgs", user="inspector-b")["items"]]
    assert NEW_ORG in {o["name"] for o in new}  # now in the other county's subtree


def test_site_created_with_its_enrolment_shown_once(world: dict[str, Any]) -> None:
    sites = world["seen"]["sites"]
    assert {r[0] for r in sites["rows"]} >= {"demo-canteen-a", "demo-canteen-b"}
    assert sites["count"] == "共 3 个站点，1 个在线"
    assert sites["pageChecks"]["site_id"].startswith("站点编号须为小写字母")
    assert sites["serverChecks"] == {"site_id": "已被占用，请换一个"}
    bundle = sites["bundle"]
    assert bundle["title"] == f"站点 {NEW_SITE['id']} 的接入文件"
    assert bundle["user"] == NEW_SITE["id"] and len(bundle["password"]) >= 24
    assert bundle["files"] == [f"{NEW_SITE['id']}.edge.yaml", f"{NEW_SITE['id']}.credentials.yaml"]
    assert sites["downloaded"]["name"] == f"{NEW_SITE['id']}.credentials.yaml"
    assert bundle["password"] in sites["downloaded"]["text"]
    assert sites["secretGone"]  # closed: the password is no longer in the page
    assert sites["created"][:2] == [NEW_SITE["id"], NEW_SITE["name"]]
    assert NEW_SITE["enterprise"] in sites["created"][2] and sites["created"][3] == "未知"
    assert NEW_SITE["id"] in sites["rotateQuestion"]
    assert sites["rotated"] != bundle["password"]
    assert set(sites["countyB"]) == {"demo-canteen-b", NEW_SITE["id"]}
    # The broker takes the newest password only.
    assert world["broker"] == {bundle["password"]: False, sites["rotated"]: True}
    actions = [e["action"] for e in world["audit"] if e["target"] == f"site:{NEW_SITE['id']}"]
    assert sorted(actions) == ["site_create", "site_credentials_reset"]
    for secret in (bundle["password"], sites["rotated"]):
        assert secret not in json.dumps(world["audit"])


def test_english_on_request(world: dict[str, Any]) -> None:
    en = world["seen"]["en"]
    assert en["lang"] == "en" and en["missing"] == []
    assert en["tabs"] == [
        *("Users & roles", "Organisations", "Sites & enrolment"),
        *("Public links", "Webhooks", "Audit log"),
    ]
    assert en["back"] == "zh-CN"


@pytest.mark.parametrize("who", ["inspector", "staff"])
def test_others_are_refused_the_user_admin(world: dict[str, Any], who: str) -> None:
    seen = world["seen"][who]
    assert seen["menu"][-1] == "/admin"  # their administration entry: public links only
    assert seen["status"] == 403 and "无权使用此管理页面" in seen["text"]
    assert seen["api"] == 403 and seen["sites"] == 403
