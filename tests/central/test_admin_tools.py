"""The admin tools' API: audit log pages, filters and CSV; webhook tests, pauses and counts;
the printable QR poster of a public link."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from central_support import Central, call, make_config

from central.api.common import SERVICES
from central.app import create_app
from central.regulation.audit import AuditEntry, insert_entry
from central.regulation.audit_search import AuditFilter, AuditSearch, Cursor, walk_sql
from central.regulation.scope import Scope
from central.regulation.seed import seed_demo

pytestmark = pytest.mark.asyncio


def _write(central: Central, entries: list[tuple[float, AuditEntry]]) -> None:
    with central.svc.ldb.transaction() as db:
        for ts, entry in entries:
            insert_entry(db, entry, ts)


def _plan(central: Central, f: AuditFilter, cursor: Cursor | None) -> str:
    sql, params = walk_sql(f, cursor)
    with central.svc.ldb.lock:
        rows = central.svc.ldb.db.execute(f"explain query plan {sql}", [*params, 10]).fetchall()
    return " | ".join(str(r[-1]) for r in rows)


@pytest.mark.databases("sqlite")  # it reads SQLite's query plans
async def test_audit_pages_walk_one_index_and_continue_from_a_cursor(central: Central) -> None:
    t0 = 1_790_000_000.0
    _write(
        central,
        [
            (
                t0 + i,
                AuditEntry(
                    action="live_view" if i % 3 else "webhook_test",
                    target=f"webhook:{i % 4}" if i % 3 == 0 else f"camera:s/c{i}",
                    detail={"note": "打印海报" if i == 7 else f"n{i}"},
                    username="alice" if i % 2 else "bob",
                ),
            )
            for i in range(60)
        ],
    )
    search = AuditSearch(central.svc.ldb, scan_limit=25)
    every = Scope.everything()
    window = AuditFilter(since=t0, until=t0 + 60)
    # Paging newest first: every entry of the window once, in order, across scan-limited pages.
    seen: list[int] = []
    cursor = None
    for _ in range(20):
        page = search.page(every, window, cursor, limit=7)
        seen += [e["id"] for e in page.items]
        if page.next is None:
            break
        cursor = Cursor.decode(page.next.encode())
    stamps = [
        r["ts"] for r in central.svc.ldb.db.query("select ts from audit_log where ts >= ?", [t0])
    ]
    assert len(seen) == len(set(seen)) == 60 == len(stamps)
    assert seen == sorted(seen, reverse=True)
    # A filter the index cannot serve: each page stops after 25 entries and says so.
    rare = AuditFilter(text="打印海报", since=t0)
    first = search.page(every, rare, None, limit=5)
    assert first.items == [] and first.partial and first.scanned == 25 and first.next
    found, pages, cursor = [], 1, first.next
    while cursor is not None:
        page = search.page(every, rare, cursor, limit=5)
        assert page.scanned <= 25
        found += [e["detail"]["note"] for e in page.items]
        pages, cursor = pages + 1, page.next
    assert found == ["打印海报"] and pages >= 3
    # Exact filters: actor, action, exact target and a kind of target.
    search = AuditSearch(central.svc.ldb)
    bob_tests = search.page(every, AuditFilter(actor="bob", action="webhook_test"), None, 100)
    assert {(e["username"], e["action"]) for e in bob_tests.items} == {("bob", "webhook_test")}
    assert len(bob_tests.items) == 10 and bob_tests.next is None
    exact = search.page(every, AuditFilter(target="webhook:2"), None, 100)
    assert {e["target"] for e in exact.items} == {"webhook:2"} and len(exact.items) == 5
    kind = search.page(every, AuditFilter(target="webhook", since=t0), None, 100)
    assert len(kind.items) == 20
    # Each walk follows an index in its own order: no table scan, no sort of the matches.
    for f, index in [
        (AuditFilter(), "idx_audit_log_ts"),
        (AuditFilter(since=t0, until=t0 + 9), "idx_audit_log_ts"),
        (AuditFilter(actor="bob", action="x", text="y"), "idx_audit_username_ts"),
        (AuditFilter(action="login"), "idx_audit_action_ts"),
        (AuditFilter(target="webhook:1", actor="bob"), "idx_audit_target_ts"),
    ]:
        plan = _plan(central, f, Cursor(t0 + 30, 5))
        assert f"USING INDEX {index}" in plan and "TEMP B-TREE" not in plan, plan
    with pytest.raises(Exception, match="before: not a cursor"):
        Cursor.decode("yesterday")


async def test_audit_api_filters_by_local_days_and_exports_the_same_rows(central: Central) -> None:
    # 2026-06-01 23:30 and 2026-06-02 00:30 in Beijing: two local days, one UTC day.
    late, early = 1780327800.0, 1780331400.0
    _write(
        central,
        [
            (late, AuditEntry(action="login", username="=cmd|x", target="user:9", ip="10.0.0.9")),
            (early, AuditEntry(action="login", username="carol", target="user:8")),
        ],
    )
    day = {"from": "2026-06-02T00:00:00+08:00", "to": "2026-06-03T00:00:00+08:00"}
    status, page = await call(
        central, "admin", "GET", "/api/v1/audit", params={**day, "action": "login"}
    )
    assert status == 200 and [e["username"] for e in page["items"]] == ["carol"]
    status, body = await call(
        central,
        "admin",
        "GET",
        "/api/v1/audit",
        params={"action": "login", "from": str(late - 1), "to": str(early + 1), "format": "csv"},
    )
    assert status == 200
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["时间", "操作人", "操作"]
    assert [r[0] for r in rows[1:]] == ["2026-06-02 00:30:00", "2026-06-01 23:30:00"]
    assert rows[1][1:4] == ["carol", "登录", "login"]
    assert rows[2][1] == "'=cmd|x"  # a formula-looking cell is written as text
    status, page = await call(
        central, "admin", "GET", "/api/v1/audit", params={"action": "audit_export"}
    )
    [export] = page["items"]
    assert export["username"] == "admin" and export["detail"]["rows"] == 2
    for user in ("inspector-a", "city-monitor", "staff-canteen-a"):
        status, _ = await call(central, user, "GET", "/api/v1/audit", params={"format": "csv"})
        assert status == 403
    status, err = await call(central, "admin", "GET", "/api/v1/audit", params={"before": "x"})
    assert status == 400 and "before" in err["error"]["message"]


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it gets and answers as told."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status: dict[str, int] = {}

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append({"path": request.path, "headers": dict(request.headers),
                              "body": await request.read()})  # fmt: skip
        return web.Response(status=self.status.get(request.path, 200), text="robot says no")


@pytest_asyncio.fixture
async def hooked(
    aiohttp_client: Any, tmp_path: Path
) -> AsyncIterator[tuple[Central, Receiver, str]]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    config = make_config(tmp_path, push={"allow_networks": ["127.0.0.1/32"], "attempts": 1})
    client = await aiohttp_client(create_app(config))
    seed = await asyncio.to_thread(seed_demo, client.app[SERVICES])
    yield Central(client, seed), receiver, base
    await runner.cleanup()


async def test_webhook_secret_once_test_send_pause_and_counts(
    hooked: tuple[Central, Receiver, str],
) -> None:
    central, receiver, base = hooked
    orgs = central.seed["orgs"]
    status, hook = await call(
        central,
        "admin",
        "POST",
        "/api/v1/webhooks",
        json={"org_id": orgs["county_a"], "url": f"{base}/json", "format": "json",
              "generate_secret": True},
    )  # fmt: skip
    assert status == 201 and len(hook["secret"]) >= 40 and hook["signed"]
    status, listed = await call(central, "admin", "GET", "/api/v1/webhooks")
    assert hook["secret"] not in json.dumps(listed)
    # The test message arrives signed with the key shown once.
    status, result = await call(central, "admin", "POST", f"/api/v1/webhooks/{hook['id']}/test")
    assert status == 200 and result == {"ok": True, "error": ""}
    [sent] = receiver.requests
    assert json.loads(sent["body"])["type"] == "test"
    digest = hmac.new(hook["secret"].encode(), sent["body"], hashlib.sha256).hexdigest()
    assert sent["headers"]["X-FSV-Signature"] == f"sha256={digest}"
    # A refusing receiver: the test says why; an alert's delivery is counted as failed.
    receiver.status["/json"] = 403
    status, result = await call(central, "admin", "POST", f"/api/v1/webhooks/{hook['id']}/test")
    assert result == {"ok": False, "error": "HTTP 403: robot says no"}
    await central.event("demo-canteen-a", "cam1")
    await central.svc.dispatcher.idle()
    receiver.status.pop("/json")
    await central.event("demo-canteen-a", "cam1")
    await central.svc.dispatcher.idle()
    status, listed = await call(central, "admin", "GET", "/api/v1/webhooks")
    [row] = listed["items"]
    stats = row["deliveries"]
    assert (stats["delivered"], stats["failed"], stats["pending"]) == (1, 1, 0)
    assert stats["error"] == "HTTP 403: robot says no" and stats["delivered_at"]
    # Paused: the next alert is not sent; resumed: it is again.
    status, paused = await call(
        central, "admin", "PATCH", f"/api/v1/webhooks/{hook['id']}", json={"enabled": False}
    )
    assert status == 200 and paused["enabled"] == 0
    before = len(receiver.requests)
    await central.event("demo-canteen-a", "cam1")
    await central.svc.dispatcher.idle()
    assert len(receiver.requests) == before
    # Regulators may not touch webhooks; every change is in the audit log.
    for method, path in (("POST", "/test"), ("PATCH", "")):
        status, _ = await call(
            central, "inspector-a", method, f"/api/v1/webhooks/{hook['id']}{path}",
            json={"enabled": True},
        )  # fmt: skip
        assert status == 403
    status, log = await call(central, "admin", "GET", "/api/v1/audit", params={"target": "webhook"})
    actions = [e["action"] for e in log["items"]]
    assert actions == ["webhook_update", "webhook_test", "webhook_test", "webhook_create"]
    assert [e["detail"].get("ok") for e in log["items"][1:3]] == [False, True]
    # A key of one's own with generate_secret, or a key made for a robot format, is refused.
    status, err = await call(
        central, "admin", "POST", "/api/v1/webhooks",
        json={"org_id": orgs["city"], "url": f"{base}/w", "format": "wecom",
              "generate_secret": True},
    )  # fmt: skip
    assert status == 400 and "generate_secret" in err["error"]["message"]
    # Test messages: a few a minute per admin (two were sent above).
    url = f"/api/v1/webhooks/{hook['id']}/test"
    codes = [(await call(central, "admin", "POST", url))[0] for _ in range(5)]
    assert codes == [200] * 4 + [429] and len(receiver.requests) == before + 4


async def test_poster_prints_the_canteen_and_its_qr_in_scope_only(central: Central) -> None:
    orgs = central.seed["orgs"]
    for site in ("demo-canteen-a", "demo-canteen-b"):
        await central.event(site, "cam1")
    links = {}
    for staff, key, site in (
        ("staff-canteen-a", "canteen_a", "demo-canteen-a"),
        ("staff-canteen-b", "canteen_b", "demo-canteen-b"),
    ):
        status, links[key] = await call(
            central, staff, "POST", "/api/v1/public-links",
            json={"org_id": orgs[key], "cameras": [f"{site}/cam1"], "label": "{{t:nav.inbox}}"},
        )  # fmt: skip
        assert status == 201
    link = links["canteen_a"]
    resp = await central.client.get(
        f"/api/v1/public-links/{link['id']}/poster?token={link['token']}",
        headers=await central.token("inspector-a"),
    )
    page = await resp.text()
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "中卫市第一小学食堂" in page and "扫码查看后厨直播" in page
    assert f">{link['url']}<" in page and '<svg xmlns="http://www.w3.org/2000/svg"' in page
    assert 'viewBox="0 0 ' in page and "<?xml" not in page  # scales to the printed box
    assert "style=" not in page and "<script>" not in page and "{{t:" not in page
    assert "JY36405020000001" in page
    # County A's inspector and canteen A's staff cannot print canteen B's poster.
    for user in ("inspector-a", "staff-canteen-a"):
        status, _ = await call(
            central,
            user,
            "GET",
            f"/api/v1/public-links/{links['canteen_b']['id']}/poster?token={links['canteen_b']['token']}",
        )
        assert status == 404
    await call(central, "staff-canteen-a", "DELETE", f"/api/v1/public-links/{link['id']}")
    status, err = await call(
        central, "staff-canteen-a", "GET",
        f"/api/v1/public-links/{link['id']}/poster?token={link['token']}",
    )  # fmt: skip
    assert status == 409 and "revoked" in err["error"]["message"]
    # The admin pages themselves: Chinese, nothing inline for the CSP.
    pages = {"/admin/webhooks": "推送机器人", "/admin/links": "公开链接"}
    pages["/admin/audit"] = "审计日志"
    for path, title in pages.items():
        resp = await central.client.get(path)
        page = await resp.text()
        assert resp.status == 200 and title in page and "{{t:" not in page
        assert "style=" not in page and "<script>" not in page
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
