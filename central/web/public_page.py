"""The public kitchen page behind a canteen's QR code: its name, licence, latest inspection and
live video of its published cameras. No login, no menu, nothing else of the system."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from central.web import i18n

# Scripts of the page: the catalogue, the shared helpers, the shared player and the page's own.
SCRIPTS = ("/i18n.js", "/static/app.js", "/static/live-player.js", "/static/public.js")
STYLES = ("/static/style.css", "/static/public.css")


def live_path(token: str, ref: str) -> str:
    """The WebSocket path of a published camera's sub stream over the public link."""
    site, _, camera = (quote(part, safe="") for part in ref.partition("/"))
    return f"/api/v1/public/{quote(token, safe='')}/live/{site}/{camera}"


def _camera_buttons(lang: str, token: str, cameras: list[dict[str, Any]]) -> str:
    e = html.escape
    out = []
    for i, cam in enumerate(cameras):
        station = (
            i18n.catalogue(lang).get(f"station.{cam['station']}", "") if cam["station"] else ""
        )
        state = i18n.t(lang, "camera.online" if cam["online"] else "camera.offline")
        out.append(
            f'<button type="button" class="cam{" on" if i == 0 else ""}" '
            f'data-ref="{e(cam["ref"])}" data-src="{e(live_path(token, cam["ref"]))}" '
            f'data-station="{e(station)}" aria-pressed="{"true" if i == 0 else "false"}">'
            f'<span class="name">{e(cam["name"])}</span>'
            f'<span class="dot{"" if cam["online"] else " down"}">{e(state)}</span></button>'
        )
    return "".join(out)


def _inspection(lang: str, timezone: str, inspection: dict[str, Any] | None) -> str:
    e = html.escape
    if inspection is None:
        return (
            f"<dt>{e(i18n.t(lang, 'public.inspection'))}</dt>"
            f'<dd class="muted">{e(i18n.t(lang, "public.inspection_none"))}</dd>'
        )
    day = i18n.local_time(inspection["inspected_at"], timezone, "%Y-%m-%d")
    result = i18n.t(lang, f"result.{inspection['result']}")
    out = (
        f"<dt>{e(i18n.t(lang, 'public.inspection'))}</dt>"
        f'<dd><span class="result result-{e(inspection["result"])}">{e(result)}</span> '
        f"<time>{e(day)}</time></dd>"
    )
    if inspection.get("rating"):
        rating = i18n.t(lang, f"rating.{inspection['rating']}")
        out += (
            f"<dt>{e(i18n.t(lang, 'public.rating'))}</dt>"
            f'<dd><span class="rating rating-{e(inspection["rating"])}">{e(rating)}</span></dd>'
        )
    return out


def render(lang: str, timezone: str, token: str, view: dict[str, Any]) -> str:
    """The whole page in `lang` for the resolved public `view` of a link."""
    e = html.escape
    c = view["canteen"]
    cams = view["cameras"]
    brand = i18n.t(lang, "public.bright_kitchen")
    other = "en" if lang == "zh-CN" else "zh-CN"
    if cams:
        video = (
            '<div class="frame"><video id="pub-video" muted playsinline autoplay '
            'disablepictureinpicture></video><p id="pub-msg" class="msg" hidden></p></div>'
            f'<p class="caption"><span id="pub-cam"></span>'
            f'<span id="pub-state" class="state">{e(i18n.t(lang, "player.connecting"))}</span></p>'
            f'<div class="cams" role="group" aria-label="{e(i18n.t(lang, "public.cameras"))}">'
            f"{_camera_buttons(lang, token, cams)}</div>"
        )
    else:
        video = f'<p class="empty">{e(i18n.t(lang, "public.no_cameras"))}</p>'
    facts = ""
    if c["licence_no"]:
        facts += f"<dt>{e(i18n.t(lang, 'public.licence_label'))}</dt><dd>{e(c['licence_no'])}</dd>"
    facts += _inspection(lang, timezone, view.get("inspection"))
    if c["address"]:
        facts += f"<dt>{e(i18n.t(lang, 'public.address'))}</dt><dd>{e(c['address'])}</dd>"
    notes = f'<p class="note">{e(c["public_info"])}</p>' if c["public_info"] else ""
    if view.get("expires_at"):
        until = i18n.local_time(view["expires_at"], timezone, "%Y-%m-%d %H:%M")
        notes += f'<p class="muted">{e(i18n.t(lang, "public.expires", time=until))}</p>'
    head = "".join(f'<link rel="stylesheet" href="{s}">' for s in STYLES) + "".join(
        f'<script src="{s}" defer></script>' for s in SCRIPTS
    )
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{e(c['name'])} · {e(brand)}</title>"
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
        f'{head}</head><body class="public">'
        f'<header class="pub-top"><div class="titles"><span class="brand">{e(brand)}</span>'
        f"<h1>{e(c['name'])}</h1></div>"
        f'<button id="lang" class="lang" data-lang="{other}" type="button">'
        f"{e(i18n.t(lang, 'lang.short'))}</button></header>"
        f'<main class="pub"><section class="video" aria-label="{e(i18n.t(lang, "public.cameras"))}"'
        ">"
        f'{video}</section><section class="info"><dl>{facts}</dl>{notes}</section>'
        f'<p class="notice muted">{e(i18n.t(lang, "public.notice"))}</p></main></body></html>'
    )
