"""The pages as the server renders them: language from the cookie, a menu fitted to the role."""

from __future__ import annotations

import re

import pytest
from central_support import Central

pytestmark = pytest.mark.asyncio


async def sign_in(central: Central, username: str) -> None:
    """A browser-style (cookie) session of `username` in the test client's cookie jar."""
    central.client.session.cookie_jar.clear()
    resp = await central.client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": central.passwords[username]},
    )
    assert resp.status == 200, await resp.text()


def menu_links(page: str) -> list[str]:
    nav = re.search(r'<nav class="menu">(.*?)</nav>', page, re.S)
    assert nav is not None
    return re.findall(r'href="([^"]+)"', nav.group(1))


async def test_pages_are_chinese_first_and_english_on_request(central: Central) -> None:
    resp = await central.client.get("/login")
    page = await resp.text()
    assert '<html lang="zh-CN">' in page and "登录" in page and "{{t:" not in page
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "style=" not in page and "<script>" not in page  # nothing inline for the CSP
    central.client.session.cookie_jar.update_cookies({"fsv_lang": "en"})
    page = await (await central.client.get("/login")).text()
    assert '<html lang="en">' in page and "Sign in" in page
    script = await (await central.client.get("/i18n.js")).text()
    assert '"lang": "en"' in script and '"timezone": "Asia/Shanghai"' in script
    central.client.session.cookie_jar.update_cookies({"fsv_lang": "klingon"})
    page = await (await central.client.get("/login")).text()
    assert '<html lang="zh-CN">' in page  # an unknown choice falls back to Chinese


@pytest.mark.parametrize(
    ("username", "links"),
    [
        ("admin", ["/dashboard", "/inbox", "/live", "/replay", "/reports", "/label", "/admin"]),
        (
            "inspector-a",
            ["/dashboard", "/inbox", "/live", "/replay", "/reports", "/label", "/admin"],
        ),
        # no reports, no dashboard, no labelling (the supervised party does not judge)
        ("staff-canteen-a", ["/inbox", "/live", "/replay", "/admin"]),  # public links only
    ],
)
async def test_menu_shows_what_the_role_may_use(
    central: Central, username: str, links: list[str]
) -> None:
    await sign_in(central, username)
    for path in ("/inbox", "/live", "/replay", "/reports", "/dashboard", "/label", "/admin/audit"):
        page = await (await central.client.get(path)).text()
        assert menu_links(page) == links, (username, path)
        for key in re.findall(r"\{\{t:[^}]*\}\}", page):
            pytest.fail(f"{path}: untranslated placeholder {key}")


async def test_admin_pages_show_the_tabs_each_role_may_use(central: Central) -> None:
    await sign_in(central, "admin")
    resp = await central.client.get("/admin", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/admin/users"
    every = ("/admin/users", "/admin/orgs", "/admin/sites")
    every += ("/admin/links", "/admin/webhooks", "/admin/audit")
    for path in every:
        resp = await central.client.get(path)
        page = await resp.text()
        assert resp.status == 200 and "{{t:" not in page and "<script>" not in page
        assert (
            "style=" not in page and "default-src 'self'" in resp.headers["Content-Security-Policy"]
        )
        tabs = re.search(r'<nav class="admin-tabs">(.*?)</nav>', page, re.S)
        assert tabs is not None
        assert tuple(re.findall(r'href="([^"]+)"', tabs.group(1))) == every
        assert f'<a href="{path}" class="active"' in tabs.group(1)
    # Regulators and canteen staff manage public links, nothing else of the administration.
    for username in ("city-monitor", "inspector-a", "staff-canteen-a"):
        await sign_in(central, username)
        for path in (
            "/admin/users",
            "/admin/orgs",
            "/admin/sites",
            "/admin/webhooks",
            "/admin/audit",
        ):
            resp = await central.client.get(path)
            page = await resp.text()
            assert resp.status == 403 and "admin-tabs" not in page and "无权" in page, path
        resp = await central.client.get("/admin", allow_redirects=False)
        assert resp.headers["Location"] == "/admin/links"
        page = await (await central.client.get("/admin/links")).text()
        tabs = re.search(r'<nav class="admin-tabs">(.*?)</nav>', page, re.S)
        assert tabs is not None and re.findall(r'href="([^"]+)"', tabs.group(1)) == ["/admin/links"]


async def test_signed_out_pages_show_no_menu(central: Central) -> None:
    central.client.session.cookie_jar.clear()
    page = await (await central.client.get("/inbox")).text()
    assert menu_links(page) == []


async def test_vendored_chart_library_is_served_from_central(central: Central) -> None:
    resp = await central.client.get("/static/vendor/echarts/echarts.common.min.js")
    assert resp.status == 200
    assert b"Apache" in (await resp.read())[:2000]
    licence = await central.client.get("/static/vendor/echarts/LICENSE")
    assert licence.status == 200 and "Apache License" in await licence.text()
