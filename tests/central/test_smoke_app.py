"""The regulator side starts inside central's app and answers."""

import pytest
from central_support import Central

pytestmark = pytest.mark.asyncio


async def test_login_and_me(central: Central) -> None:
    headers = await central.token("inspector-a")
    resp = await central.client.get("/api/v1/auth/me", headers=headers)
    assert resp.status == 200
    assert (await resp.json())["user"]["role"] == "county_inspector"


async def test_pages_share_one_layout(central: Central) -> None:
    for path in ("/login", "/inbox", "/reports", "/dashboard", "/live", "/replay"):
        resp = await central.client.get(path)
        page = await resp.text()
        # One header on every page; its menu is fitted to the signed-in role (test_web_pages).
        assert resp.status == 200 and '<header class="top">' in page, path
        assert '<nav class="menu">' in page and 'src="/static/app.js"' in page, path
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    resp = await central.client.get("/sw.js")
    assert resp.status == 200 and "showNotification" in await resp.text()
    resp = await central.client.get("/static/inbox.js")
    assert resp.status == 200 and "/api/v1/alerts" in await resp.text()
    resp = await central.client.get("/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/inbox"
