"""The pages' one message catalogue: zh-CN first, English second, chosen by a cookie.

Every label, enum value (alert kinds, stations, states, actions, roles, levels) and error
text the pages show comes from ``messages/<lang>.json``. HTML fragments name a message as
``{{t:key}}`` and are filled in on the server; scripts call ``fsv.t("key")`` on the catalogue
that ``/i18n.js`` hands them together with the site's time zone.
"""

from __future__ import annotations

import functools
import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

MESSAGES_DIR = Path(__file__).resolve().parent / "messages"
LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"
LANG_COOKIE = "fsv_lang"
PLACEHOLDER = re.compile(r"\{\{t:([a-z0-9_.]+)\}\}")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# Catalogue groups that name the values of an enum ("kind.no_chef_hat"), listed for filters.
ENUM_GROUPS = (
    "kind", "station", "state", "action", "role", "level", "severity", "etype", "audit_action",
)  # fmt: skip


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """The messages of `lang` (one of LANGS), read once."""
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r} (one of {', '.join(LANGS)})")
    data: dict[str, str] = json.loads((MESSAGES_DIR / f"{lang}.json").read_text("utf-8"))
    return data


def lang_of(request: web.Request) -> str:
    """The language the caller chose (cookie), zh-CN unless they switched."""
    chosen = request.cookies.get(LANG_COOKIE, "")
    return chosen if chosen in LANGS else DEFAULT_LANG


def t(lang: str, key: str, **params: object) -> str:
    """The message `key` in `lang` with ``{name}`` parameters filled; KeyError if missing."""
    text = catalogue(lang)[key]
    for name, value in params.items():
        text = text.replace(f"{{{name}}}", str(value))
    return text


def fill(lang: str, fragment: str) -> str:
    """Replace each ``{{t:key}}`` of an HTML fragment by its escaped message."""
    return PLACEHOLDER.sub(lambda m: html.escape(t(lang, m.group(1))), fragment)


def local_time(ts: float, timezone: str, fmt: str = TIME_FORMAT) -> str:
    """Epoch seconds as the site's wall-clock time, in the pages' one format."""
    return datetime.fromtimestamp(ts, UTC).astimezone(ZoneInfo(timezone)).strftime(fmt)


def script(lang: str, timezone: str) -> str:
    """The body of /i18n.js: the catalogue of `lang` and the site's time zone."""
    messages = catalogue(lang)
    enums: dict[str, list[str]] = {}
    for key in messages:
        group, _, value = key.partition(".")
        if group in ENUM_GROUPS:
            enums.setdefault(group, []).append(value)
    settings = {"lang": lang, "timezone": timezone, "messages": messages, "enums": enums}
    return f"window.FSV_I18N = {json.dumps(settings, ensure_ascii=False)};\n"
