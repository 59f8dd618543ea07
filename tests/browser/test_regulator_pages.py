"""Central's regulator pages in headless Chromium: Chinese first, phone to wall, live inbox.

One walk through the pages (regulator_pages.mjs) against a real broker and central, at
1920×1080, 1440×900 and 390×844; each test checks one part of what the people in it saw, and
the API's record of what they did. Screenshots stay in /tmp/fsv-regulator-pages.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from regulator_system import RegulatorSystem
from walks import Walk

from central.web.i18n import local_time
from fsv_contract import HeartbeatPayload
from fsv_contract.payloads import CameraStats, LaneStats
from testbed.footage import camera_jpeg

pytestmark = pytest.mark.slow
CANTEEN = "中卫市第一小学食堂"
REQUEST_NOTE = "请佩戴厨师帽并培训全体厨师"
SUBMIT_NOTE = "已培训全体厨师，已发放厨师帽"
CLOSE_REASON = "复核照片，整改到位"
SUB_REASON = "unauthorized (check the camera credential)"
SHOTS = Path("/tmp/fsv-regulator-pages")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, walk: Walk) -> Iterator[dict[str, Any]]:
    """Start broker and central, raise an alert with a real snapshot, walk the pages once."""
    root = tmp_path_factory.mktemp("regulator")
    system = RegulatorSystem(root)
    system.start()
    try:
        snapshot = camera_jpeg(40)
        alert_id = system.raise_alert_with_snapshot(snapshot)
        # The camera's sub stream is recorded but its recorder is offline, and says why.
        lane = LaneStats(state="offline", fps=0.0, bitrate_bps=0.0, reason=SUB_REASON)
        system.heartbeat(
            HeartbeatPayload(
                ts=datetime.now(UTC),
                uptime_s=60.0,
                disk_free_bytes=1,
                disk_total_bytes=2,
                cpu_percent=1.0,
                cameras=[CameraStats(camera="cam1", state="online", sub=lane)],
            )  # fmt: skip
        )
        photo = root / "rectified.jpg"
        photo.write_bytes(camera_jpeg(400))
        orgs = system.api("GET", "/api/v1/orgs", user="admin")["items"]
        by_name = {o["name"]: o for o in orgs}
        link = system.api(
            "POST",
            "/api/v1/public-links",
            user="staff-canteen-a",
            body={"org_id": by_name[CANTEEN]["id"], "cameras": ["demo-canteen-a/cam1"]},
        )
        SHOTS.mkdir(exist_ok=True)
        raised: dict[str, str] = {}

        def raise_new(message: dict[str, Any]) -> str:
            assert message["waiting"] == "alert", message
            raised["id"] = system.raise_alert_with_snapshot(
                camera_jpeg(120), kind="smoking", severity="critical"
            )
            return raised["id"]

        options = {
            "url": system.url,
            "users": system.users,
            "alertId": alert_id,
            "countyA": by_name["沙坡头区 Shapotou"]["id"],
            "photo": str(photo),
            "shots": str(SHOTS),
            "publicUrl": link["url"],
            "requestNote": REQUEST_NOTE,
            "submitNote": SUBMIT_NOTE,
            "closeReason": CLOSE_REASON,
        }
        seen = walk("regulator_pages.mjs", options, timeout=420, answer=raise_new)
        (SHOTS / "seen.json").write_text(json.dumps(seen, ensure_ascii=False, indent=1))
        alert = system.api("GET", f"/api/v1/alerts/{alert_id}", user="inspector-a")
        yield {"seen": seen, "alert": alert, "photo": photo.read_bytes(), "raised": raised}
    except BaseException:
        print(system.logs())
        raise
    finally:
        system.stop()


def test_no_errors_overflow_or_untranslated_text_at_any_size(world: dict[str, Any]) -> None:
    seen = world["seen"]
    assert seen["problems"] == []
    audits = seen["audits"]
    assert len(audits) >= 20
    for where, a in audits.items():
        assert a["scrollWidth"] <= a["innerWidth"], (where, a)  # no sideways scroll
        assert a["headerHeight"] <= 56, (where, a)  # the header is one row
        assert a["squeezed"] == [], (where, a)  # no name wrapped one character per line
        assert a["missing"] == [] and not a["placeholders"], (where, a)
        assert a["rawIds"] == [], (where, a)
        assert (SHOTS / f"{where.replace('/', '-')}.png").stat().st_size > 5_000
    assert audits["inspector/inbox/phone"]["lang"] == "zh-CN"
    # Inbox filters: folded on a phone, always shown on a desk and a wall.
    assert audits["inspector/inbox/phone"]["filters"] is False
    assert audits["inspector/inbox/desktop"]["filters"] is True
    assert audits["inspector/inbox/wall"]["filters"] is True


def test_sign_in_refuses_a_wrong_password_in_chinese(world: dict[str, Any]) -> None:
    sign_in = world["seen"]["requested"]["signIn"]
    assert sign_in["wrong"]["path"] == "/login"
    assert sign_in["wrong"]["error"] == "用户名或密码错误"
    assert sign_in["landed"] == "/inbox"
    assert "县级监管员" in sign_in["who"]


def test_inbox_shows_the_alert_in_words_with_its_snapshot(world: dict[str, Any]) -> None:
    requested = world["seen"]["requested"]
    [row] = requested["list"]
    assert row["kind"] == "未戴厨师帽" and row["stateText"] == "新预警"
    assert row["where"] == f"{CANTEEN} · 后厨加工区" and row["severity"] == "一般"
    # The browser runs in Berlin; the page still tells Beijing time, in the one format.
    assert row["time"] == local_time(world["alert"]["start"], "Asia/Shanghai")
    assert requested["menuLinks"] == [
        "/dashboard",
        "/inbox",
        "/live",
        "/replay",
        "/reports",
        "/label",
        "/admin",  # public links
    ]
    assert requested["image"]["width"] == 768 and requested["image"]["height"] == 576
    assert 0 < requested["image"]["shown"] <= 390  # scaled to the phone's width
    before = requested["before"]
    assert before["actions"] == ["acknowledge", "request_rectification", "close"]
    assert before["replayLink"]
    phone = requested["phone"]  # the detail first, its actions within thumb reach
    assert phone["detailTop"] < phone["listTop"] and phone["actionsBottom"] <= phone["height"]


def test_new_alert_appears_in_the_open_inbox_within_two_seconds(world: dict[str, Any]) -> None:
    live = world["seen"]["live"]
    assert live["id"] == world["raised"]["id"]
    assert live["ms"] < 2000, live
    assert live["first"] == {"id": live["id"], "severity": "严重", "fresh": True}
    assert live["reloaded"] == 1  # the same page load: no reload
    assert live["bulkLabel"] == "批量确认（1）" and live["bulkHidden"]


def test_rectification_round_trip_through_the_forms(world: dict[str, Any]) -> None:
    seen = world["seen"]
    requested, staff, closed = seen["requested"]["requested"], seen["staff"], seen["closed"]
    assert requested["stateText"] == "待整改"
    assert any(REQUEST_NOTE in line and "要求整改，期限" in line for line in requested["history"])
    # Staff see the request and only their own action; no reports menu, and reports refuse.
    assert staff["menuLinks"] == ["/inbox", "/live", "/replay", "/admin"]  # public links
    assert staff["before"]["actions"] == ["submit_rectification"]
    assert any(REQUEST_NOTE in line for line in staff["before"]["history"])
    assert staff["after"]["evidence"] == ["rectified.jpg"]
    assert staff["reportsRefused"] == "企业人员无权执行此操作"
    assert closed["before"]["actions"] == ["request_rectification", "close"]
    assert closed["photo"] == {"status": 200, "type": "image/jpeg", "bytes": len(world["photo"])}
    assert closed["viewerOpen"]
    assert closed["refusedEmpty"] == "rectification_submitted"  # no reason, no closing
    assert closed["after"]["state"] == "closed" and closed["after"]["actions"] == ["reopen"]
    assert closed["after"]["history"][-1].endswith(f"关闭了预警{CLOSE_REASON}")

    alert = world["alert"]
    steps = [(t["action"], t["username"], t["to_state"]) for t in alert["transitions"]]
    assert steps == [
        ("acknowledge", "inspector-a", "acknowledged"),
        ("request_rectification", "inspector-a", "rectification_requested"),
        ("submit_rectification", "staff-canteen-a", "rectification_submitted"),
        ("close", "inspector-a", "closed"),
    ]
    request = alert["transitions"][1]
    assert request["note"] == REQUEST_NOTE
    # The date picker's default: the end of the day three days ahead, on the site's clock.
    assert 2 * 86400 < request["deadline"] - request["ts"] < 4 * 86400
    assert alert["transitions"][3]["note"] == CLOSE_REASON
    [evidence] = alert["evidence"]
    assert evidence["sha256"] == hashlib.sha256(world["photo"]).hexdigest()


def test_another_county_sees_nothing_of_the_alert(world: dict[str, Any]) -> None:
    other = world["seen"]["other"]
    assert other["list"] == [] and other["empty"]
    assert other["direct"] == 404 and other["media"] == 404 and other["dashboard"] == 404
    assert "未戴厨师帽" not in other["detailText"]
    assert "未找到，或不在您的管辖范围内" in other["detailText"]


def test_inbox_shows_one_camera_from_a_live_tile_badge(world: dict[str, Any]) -> None:
    only = world["seen"]["cameraOnly"]
    assert only["cam1"] == {"rows": 2, "chip": "仅看摄像头 demo-canteen-a/cam1"}
    assert only["cam9"]["rows"] == 0
    assert only["cleared"] == {"chip": True, "hash": ""}


def test_reports_page_shows_figures_and_charts(world: dict[str, Any]) -> None:
    report = world["seen"]["report"]
    assert report["figures"]["预警总数"] == "2"
    assert report["figures"]["摄像头数"] == "1"
    assert report["table"]["状态 · 已关闭"] == "1"
    assert report["table"]["类型 · 吸烟"] == "1"
    assert report["table"][f"企业 · {CANTEEN}"] == "2"
    assert report["charts"] == 3
    assert report["period"].startswith("统计时段：") and "T" not in report["period"]
    assert "format=csv" in report["csv"]
    assert report["xlsx"] == report["csv"].replace("format=csv", "format=xlsx")


def test_english_on_request_and_back(world: dict[str, Any]) -> None:
    en = world["seen"]["en"]
    assert en["lang"] == "en" and en["nav"][1] == "Alerts" and en["missing"] == []
    assert "Closed" in en["states"]
    assert en["back"] == "zh-CN"


def test_dashboard_drills_from_city_to_an_enterprise(world: dict[str, Any]) -> None:
    dash = world["seen"]["dash"]
    city, county, enterprise = dash["city"], dash["county"], dash["enterprise"]
    assert city["crumbs"] == ["中卫市 Zhongwei"] and "中卫市 Zhongwei" in city["title"]
    assert city["nodes"] == ["中宁县 Zhongning", "沙坡头区 Shapotou"]
    assert city["kpis"]["摄像头"] == "1" and city["kpis"]["未处理预警"] == "1"  # acknowledged
    assert city["canvases"] == 2 and city["fits"]  # the wall shows everything at once
    for box in city["chartsInside"]:
        assert box["canvasBottom"] <= box["panelBottom"] and box["canvas"] == box["chart"], box
    assert any("吸烟" in line for line in city["ticker"])
    assert city["strip"] == [f"{CANTEEN} · cam1"]  # the live strip: online cameras in focus
    assert county["crumbs"] == ["中卫市 Zhongwei", "沙坡头区 Shapotou"]
    assert set(county["nodes"]) == {CANTEEN, "沙坡头定点屠宰厂"}
    assert enterprise["crumbs"][-1] == CANTEEN and enterprise["nodes"] == ["cam1"]
    # The camera's sub lane recorder, offline with the edge's reason, inside its node on the
    # wall and on a phone, in Chinese and in English.
    offline = f"子码流离线：{SUB_REASON}"
    assert enterprise["subs"] == [{"text": offline, "title": offline, "inside": True}]
    assert enterprise["phone"]["subs"] == enterprise["subs"]
    english = f"Sub stream offline: {SUB_REASON}"
    assert enterprise["en"]["subs"] == [{"text": english, "title": english, "inside": True}]
    assert enterprise["en"]["missing"] == []
    audits = world["seen"]["audits"]
    for size in ("wall", "desktop", "phone"):
        assert (
            audits[f"city/dashboard-enterprise/{size}"]["scrollWidth"]
            <= audits[f"city/dashboard-enterprise/{size}"]["innerWidth"]
        )
    assert audits["city/dashboard-enterprise-en/phone"]["lang"] == "en"


def test_admin_dashboard_starts_at_the_provinces(world: dict[str, Any]) -> None:
    admin = world["seen"]["admin"]
    assert admin["crumbs"] == ["全部"] and admin["nodes"] == ["宁夏回族自治区 Ningxia"]
    assert admin["menu"] == [
        "/dashboard",
        "/inbox",
        "/live",
        "/replay",
        "/reports",
        "/label",
        "/admin",
    ]


def test_public_kitchen_page_shows_the_canteen_and_nothing_else(world: dict[str, Any]) -> None:
    pub = world["seen"]["pub"]
    assert pub["status"] == 200 and pub["title"] == CANTEEN
    assert "文萃路 1 号" in pub["info"] and "JY36405020000001" in pub["info"]
    assert len(pub["cameras"]) == 1
    assert pub["inboxParts"] == 0 and pub["api"] == 401
    for secret in ("no_chef_hat", "rectification", REQUEST_NOTE, "inspector"):
        assert secret not in pub["text"]
