"""The printable A4 poster of a public kitchen link: canteen name, call to scan, QR, address."""

from __future__ import annotations

import html
import io
from typing import Any

import segno
from aiohttp import web

from central.web import i18n, render_page


def scalable_qr_svg(url: str) -> str:
    """The QR code of `url` as inline SVG that scales to its box (a viewBox, no fixed size)."""
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(
        out, kind="svg", scale=8, border=2, xmldecl=False, omitsize=True, svgclass="qr"
    )
    return out.getvalue().decode("utf-8")


def _text(value: object) -> str:
    """Escaped user text that the page's {{t:key}} filling cannot mistake for a placeholder."""
    return html.escape(str(value)).replace("{", "&#123;")


def poster_fragment(
    lang: str, link: dict[str, Any], org: dict[str, Any], url: str, timezone: str
) -> str:
    """The poster's markup: a toolbar for the screen, then the A4 sheet itself."""

    def t(key: str, **params: object) -> str:
        return _text(i18n.t(lang, key, **params))

    svg = scalable_qr_svg(url)
    facts = []
    if org.get("licence_no"):
        facts.append(f"<p>{t('public.licence', no=org['licence_no'])}</p>")
    if org.get("public_info"):
        facts.append(f"<p>{_text(org['public_info'])}</p>")
    if link.get("expires_at"):
        # The link ends at the midnight after its last day: print that last day.
        until = i18n.local_time(float(link["expires_at"]) - 1, timezone, "%Y-%m-%d")
        facts.append(f"<p>{t('poster.valid_until', date=until)}</p>")
    return (
        '<div class="poster-tools no-print">'
        f'<a class="button secondary" href="/admin/links">{t("common.back")}</a>'
        f'<button id="print" type="button">{t("poster.print")}</button>'
        f'<span class="muted">{t("poster.print_hint")}</span></div>'
        '<article class="sheet" id="sheet">'
        f'<p class="brand-band">{t("public.bright_kitchen")} · {t("poster.tagline")}</p>'
        f'<h1 id="poster-name">{_text(org["name"])}</h1>'
        f'<p class="call">{t("poster.scan")}</p>'
        f'<p class="how">{t("poster.how")}</p>'
        f'<figure class="qr-box" id="qr">{svg}</figure>'
        f'<p class="url" id="poster-url">{_text(url)}</p>'
        f'<div class="facts">{"".join(facts)}</div>'
        f'<p class="foot">{t("poster.footer")}</p>'
        "</article>"
    )


def poster_page(
    request: web.Request, link: dict[str, Any], org: dict[str, Any], url: str, timezone: str
) -> web.Response:
    """The whole page (shared header, hidden when printed)."""
    lang = i18n.lang_of(request)
    fragment = poster_fragment(lang, link, org, url, timezone)
    text = render_page(
        request,
        "page.poster",
        fragment,
        ("poster.js",),
        "/admin",
        body_class="poster",
        styles=("poster.css",),
    )
    return web.Response(
        text=text, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"}
    )
