"""The admin tools in headless Chromium: webhooks, public links with the QR poster, audit log.

One walk (admin_tools_pages.mjs) against a real broker and central: the admin adds a webhook
to a local receiver (the admin's allow-list names the loopback) and tests it, the canteen
manager publishes a camera and opens the A4 poster, the admin filters the audit log and
exports it. Every page at 1920×1080, 1440×900 and 390×844; screenshots stay in
/tmp/fsv-admin-tools.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from regulator_system import RegulatorSystem
from video_system import CAMERA, SITE, running, wait_until
from walks import Walk

from central.config import BrokerAdminConfig
from fsv_contract import CameraStatePayload, encode, topics

pytestmark = pytest.mark.slow
SHOTS = Path("/tmp/fsv-admin-tools")
CANTEEN = "中卫市第一小学食堂"


class Receiver(BaseHTTPRequestHandler):
    """A webhook endpoint on the loopback that keeps what it was sent."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Quiet."""


class AdminSystem(RegulatorSystem):
    """Broker and seeded central whose push may reach the loopback (the admin's allow-list)."""

    def _central_config(self, admin: BrokerAdminConfig) -> dict[str, Any]:
        config = super()._central_config(admin)
        config["push"] = {"allow_networks": ["127.0.0.1/32"], "attempts": 1}
        return config

    def camera_online(self) -> None:
        """The canteen's camera reports itself, as an edge does; central lists it."""
        state = CameraStatePayload(camera=CAMERA, state="online", since=datetime.now(UTC))
        self._publish(topics.camera_state(SITE, CAMERA), encode(state), retain=True)
        wait_until(
            lambda: self.api("GET", "/api/v1/cameras", user="admin")["items"],
            20,
            "central to list the canteen's camera",
        )


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory, walk: Walk) -> Iterator[dict[str, Any]]:
    """Start broker, central and the receiver; walk the pages once; the walk's JSON."""
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True).start()
    try:
        with running(AdminSystem(tmp_path_factory.mktemp("admin-tools"))) as system:
            system.camera_online()
            SHOTS.mkdir(exist_ok=True)
            options = {
                "url": system.url,
                "users": system.users,
                "hookUrl": f"http://127.0.0.1:{server.server_address[1]}/robot",
                "shots": str(SHOTS),
            }
            result = walk("admin_tools_pages.mjs", options, timeout=300)
            (SHOTS / "seen.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
            result["received"] = list(Receiver.received)
            result["log"]["api"] = system.api("GET", "/api/v1/audit?limit=200", user="admin")
            yield result
    finally:
        server.shutdown()


def test_pages_have_no_errors_overflow_or_untranslated_text(seen: dict[str, Any]) -> None:
    assert seen["problems"] == []
    audits = seen["audits"]
    assert len(audits) == 8 * 3
    for where, a in audits.items():
        assert a["scrollWidth"] <= a["innerWidth"], (where, a)  # no sideways scroll
        assert a["headerHeight"] <= 56, (where, a)
        assert a["squeezed"] == [] and a["rawIds"] == [], (where, a)
        assert a["missing"] == [] and not a["placeholders"], (where, a)
        assert a["tabShown"] is not False, (where, a)  # the open tab is in view
        assert (SHOTS / f"{where.replace('/', '-')}.png").stat().st_size > 5_000
    assert audits["admin-audit/phone"]["lang"] == "zh-CN"
    assert audits["admin-audit-en/desktop"]["lang"] == "en"


def test_admin_adds_a_webhook_sees_its_key_once_and_tests_it(seen: dict[str, Any]) -> None:
    hooks = seen["hooks"]
    assert hooks["empty"] and hooks["generateShown"] and not hooks["secretShown"]
    assert hooks["refused"] == "只能推送到公网地址：内网、本机和链路本地地址均被拒绝"
    assert hooks["testResult"] == "测试消息已送达"
    assert hooks["secretGone"] and not hooks["secretAfterReload"]
    # The test message reached the receiver, signed with the key the page showed once.
    [sent] = seen["received"]
    assert sent["path"] == "/robot" and json.loads(sent["body"])["type"] == "test"
    digest = hmac.new(hooks["secret"].encode(), sent["body"], hashlib.sha256).hexdigest()
    assert sent["headers"]["X-FSV-Signature"] == f"sha256={digest}"
    cells = hooks["row"]["cells"]
    assert cells[0] == "中卫市 Zhongwei"
    assert "未戴厨师帽" in cells[2] and "吸烟" in cells[2] and "一般及以上" in cells[2]
    assert cells[3] == "启用中" and "成功 0" in cells[4] and cells[5] == "无"
    assert hooks["paused"] == "已暂停"
    assert hooks["menu"][-1] == "/admin"
    assert hooks["tabs"][-3:] == ["/admin/links", "/admin/webhooks", "/admin/audit"]


def test_canteen_manager_publishes_a_camera_and_prints_the_poster(seen: dict[str, Any]) -> None:
    link = seen["link"]
    assert link["canteens"] == [CANTEEN]  # their own canteen only
    assert len(link["cameras"]) == 1 and link["noCamera"] == "请至少选择一个摄像头"
    cells = link["row"]["cells"]
    assert cells[0] == CANTEEN and cells[1] == "校门口海报" and cells[3].startswith("有效")
    assert cells[4] == link["expiry"] and cells[5] == "50"  # the last day, the viewer cap
    # The address is shown once, when made (central keeps only its token's digest).
    assert cells[6] == "仅在创建时显示一次" and "/p/" in link["row"]["url"]
    assert not link["row"]["rowUrl"] and not link["row"]["rowPoster"]
    assert "仅显示这一次" in link["row"]["once"] and link["row"]["url"] in link["row"]["once"]
    assert link["row"]["onceHidden"] and not link["row"]["urlAfterReload"]
    sheet = link["sheet"]
    assert sheet["name"] == CANTEEN and sheet["call"] == "扫码查看后厨直播"
    assert sheet["url"] == link["row"]["url"] and sheet["svg"] == 1 and sheet["qrWidth"] > 200
    assert sheet["qrFill"] > 0.85  # the code fills its box (2 light modules each side)
    assert "JY36405020000001" in sheet["text"] and f"有效期至 {link['expiry']}" in sheet["text"]
    printed = link["printed"]
    assert printed["header"] == "none" and printed["tools"] == "none"
    assert printed["pages"] == 1  # one A4 sheet
    assert link["menu"] == ["/inbox", "/live", "/replay", "/admin"]
    assert link["tabs"] == ["/admin/links"]  # the manager's one administration tab


def test_audit_log_filters_and_exports_what_it_shows(seen: dict[str, Any]) -> None:
    log = seen["log"]
    first = log["first"]  # newest first: the manager's link after the admin's pause
    assert first.index("public_link_create") < first.index("webhook_update")
    [created] = log["byActor"]
    assert created["action"] == "public_link_create"
    assert created["cells"][1] == "staff-canteen-a" and created["cells"][2] == "新建公开链接"
    assert log["byAction"] == ["webhook_test"]
    assert "action=webhook_test" in log["csvHref"] and "format=csv" in log["csvHref"]
    csv_ = log["csv"]
    assert csv_["status"] == 200 and csv_["type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(csv_["text"].lstrip("\ufeff"))))
    assert rows[0][0] == "时间" and [r[3] for r in rows[1:]] == ["webhook_test"]
    assert log["emptyShown"]
    en = log["en"]
    assert en["lang"] == "en" and en["title"] == "Audit log" and en["missing"] == []
    # The API's record: the admin's changes and the export, each once.
    actions = [e["action"] for e in log["api"]["items"]]
    for action in ("webhook_create", "webhook_test", "webhook_update", "public_link_create"):
        assert actions.count(action) == 1, action
    assert actions.count("audit_export") == 1
