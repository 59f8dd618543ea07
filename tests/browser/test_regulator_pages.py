"""Central's regulator pages in headless Chromium: sign-in, inbox, rectification, reports, public.

One walk through the pages (regulator_pages.mjs) against a real broker and central; each test
checks one part of what the people in it saw, and the API's record of what they did.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from regulator_system import RegulatorSystem, camera_jpeg
from video_system import CAMERA, SITE

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
CANTEEN = "中卫市第一小学食堂"
REQUEST_NOTE = "请佩戴厨师帽并培训 wear hats, train the staff"
SUBMIT_NOTE = "已培训全体厨师 all cooks trained, hats issued"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Start broker and central, raise an alert with a real snapshot, walk the pages once."""
    root = tmp_path_factory.mktemp("regulator")
    system = RegulatorSystem(root)
    system.start()
    try:
        snapshot = camera_jpeg(40)
        alert_id = system.raise_alert_with_snapshot(snapshot)
        photo = root / "rectified.jpg"
        photo.write_bytes(camera_jpeg(400))
        orgs = system.api("GET", "/api/v1/orgs?level=enterprise", user="admin")["items"]
        canteen = next(o for o in orgs if o["name"] == CANTEEN)
        link = system.api(
            "POST",
            "/api/v1/public-links",
            user="staff-canteen-a",
            body={"org_id": canteen["id"], "cameras": [f"{SITE}/{CAMERA}"], "label": "door"},
        )
        shots = Path("/tmp/fsv-regulator-pages")
        shots.mkdir(exist_ok=True)
        seen = _walk(
            url=system.url,
            users=system.users,
            alertId=alert_id,
            photo=str(photo),
            shots=str(shots),
            publicUrl=link["url"],
            requestNote=REQUEST_NOTE,
            submitNote=SUBMIT_NOTE,
        )
        alert = system.api("GET", f"/api/v1/alerts/{alert_id}", user="inspector-a")
        yield {"seen": seen, "alert": alert, "photo": photo.read_bytes(), "shots": shots}
    except BaseException:
        print(system.logs())
        raise
    finally:
        system.stop()


def _walk(**options: Any) -> dict[str, Any]:
    """Run regulator_pages.mjs; its JSON result, or a failure with the script's output."""
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        pytest.fail("playwright-core is missing: run `npm ci --prefix tests/browser`")
    node = shutil.which("node")
    assert node, "node is not installed"
    done = subprocess.run(
        [node, str(HERE / "regulator_pages.mjs"), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HERE,
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    assert lines, f"no result from the browser script:\n{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert result.get("ok"), f"browser script failed: {result}\n{done.stderr[-2000:]}"
    return result


def test_sign_in_refuses_a_wrong_password_then_lands_on_the_inbox(world: dict[str, Any]) -> None:
    sign_in = world["seen"]["requested"]["signIn"]
    assert sign_in["wrong"]["path"] == "/login"
    assert sign_in["wrong"]["error"].strip()
    assert sign_in["landed"] == "/inbox"
    assert "county_inspector" in sign_in["who"]
    assert world["seen"]["problems"] == []


def test_inbox_lists_the_alert_and_shows_its_snapshot(world: dict[str, Any]) -> None:
    requested = world["seen"]["requested"]
    [row] = requested["list"]
    assert row[1:] == [CANTEEN, "kitchen_prep", "no_chef_hat", "new"]
    assert requested["image"]["width"] == 768 and requested["image"]["height"] == 576
    assert 0 < requested["image"]["shown"] <= 390  # scaled to the phone's width
    for size in ("phone", "desktop"):  # nothing sticks out sideways
        layout = requested["layout"][size]
        assert layout["scrollWidth"] <= layout["innerWidth"], (size, layout)
        assert (world["shots"] / f"inbox-{size}.png").stat().st_size > 10_000


def test_rectification_round_trip_through_the_pages(world: dict[str, Any]) -> None:
    seen = world["seen"]
    requested, staff, closed = seen["requested"]["requested"], seen["staff"], seen["closed"]
    assert any(REQUEST_NOTE in line for line in requested["history"])
    # Staff see the request and a form to answer it, not the regulators' buttons.
    assert staff["list"][0][4] == "rectification_requested"
    assert staff["before"]["buttons"] == [] and staff["before"]["submitForm"]
    assert any(REQUEST_NOTE in line for line in staff["before"]["history"])
    assert staff["after"]["evidence"] == ["rectified.jpg"]
    assert closed["photo"] == {
        "status": 200,
        "type": "image/jpeg",
        "bytes": len(world["photo"]),
    }
    assert closed["after"]["state"] == "closed" and closed["list"][0][4] == "closed"

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
    assert 2.9 * 86400 < request["deadline"] - request["ts"] < 3.1 * 86400  # "3" days
    assert alert["transitions"][2]["note"] == SUBMIT_NOTE
    [evidence] = alert["evidence"]
    assert evidence["sha256"] == hashlib.sha256(world["photo"]).hexdigest()
    assert alert["state"] == "closed"


def test_another_county_sees_nothing_of_the_alert(world: dict[str, Any]) -> None:
    other = world["seen"]["other"]
    assert other["list"] == []
    assert other["direct"] == 404 and other["media"] == 404
    assert "no_chef_hat" not in other["detailText"] and "not found" in other["detailText"]


def test_reports_page_shows_the_day_in_figures(world: dict[str, Any]) -> None:
    figures = world["seen"]["report"]["figures"]
    assert figures["预警总数 Alerts"] == "1"
    assert figures["状态 State closed"] == "1"
    assert figures["类型 Kind no_chef_hat"] == "1"
    assert figures[f"企业 {CANTEEN}"] == "1"
    assert figures["逾期 Overdue"] == "0"
    assert figures["平均确认时间 Mean time to acknowledge"].endswith(" min")
    assert figures["摄像头 Cameras"] == "1"
    assert "format=csv" in world["seen"]["report"]["csv"]


def test_public_kitchen_page_shows_the_canteen_and_nothing_else(world: dict[str, Any]) -> None:
    pub = world["seen"]["pub"]
    assert pub["status"] == 200 and pub["title"] == CANTEEN
    assert "文萃路 1 号" in pub["info"] and "JY36405020000001" in pub["info"]
    assert "投诉电话 12315" in pub["info"]
    assert len(pub["cameras"]) == 1 and "在线 online" in pub["cameras"][0]
    assert pub["inboxParts"] == 0 and pub["api"] == 401
    for secret in ("no_chef_hat", "rectification", REQUEST_NOTE, "inspector"):
        assert secret not in pub["text"]
