"""The printable report (``format=html``): the catalogue's words, the site's local times."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from central.web.i18n import catalogue, local_time, t


def _when(iso: str, timezone: str) -> str:
    return local_time(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp(), timezone)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _seconds(lang: str, value: float | None) -> str:
    if value is None:
        return "–"
    return t(lang, "unit.minutes", n=f"{value / 60:.1f}")


def _table(rows: dict[str, Any]) -> str:
    e = html.escape
    body = "".join(f"<tr><td>{e(str(k))}</td><td>{e(str(v))}</td></tr>" for k, v in rows.items())
    return f"<table>{body}</table>"


def report_html(report: dict[str, Any], title: str, lang: str, timezone: str) -> str:
    """A printable HTML page of the report (no script; styles from /static, not inline)."""
    e = html.escape
    words = catalogue(lang)
    a = report["alerts"]

    def label(group: str, value: str) -> str:
        return words.get(f"{group}.{value}", value)

    period = t(
        lang,
        "reports.period",
        **{"from": _when(report["period"]["from"], timezone)},
        to=_when(report["period"]["to"], timezone),
    )
    figures = {
        t(lang, "reports.alerts"): a["total"],
        t(lang, "reports.mtta"): _seconds(lang, a["mean_time_to_acknowledge_s"]),
        t(lang, "reports.mttr"): _seconds(lang, a["mean_time_to_rectify_s"]),
        t(lang, "reports.overdue"): a["overdue"],
        t(lang, "reports.cameras"): report["cameras"]["count"],
        t(lang, "reports.online_rate"): _pct(report["cameras"]["online_rate"]),
        t(lang, "reports.recording"): _pct(report["recording"]["completeness"]),
        t(lang, "reports.retention"): _pct(report["retention"]["compliance_rate"]),
    }
    below = {
        s["name"]: t(lang, "unit.days", n=s["days"])
        for s in report["retention"]["sites_below_duty"]
    }
    sections = [
        (t(lang, "reports.by_kind"), {label("kind", k): n for k, n in a["by_kind"].items()}),
        (
            t(lang, "reports.by_station"),
            {label("station", k): n for k, n in a["by_station"].items()},
        ),
        (t(lang, "reports.by_state"), {label("state", k): n for k, n in a["by_state"].items()}),
        (t(lang, "reports.by_enterprise"), {x["name"]: x["count"] for x in a["by_enterprise"]}),
    ]
    body = "".join(f"<h2>{e(name)}</h2>{_table(rows)}" for name, rows in sections if rows)
    retention = _table(below) if below else f"<p>{e(t(lang, 'reports.all_compliant'))}</p>"
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title>"
        '<link rel="stylesheet" href="/static/report-print.css"></head><body>'
        f"<h1>{e(title)}</h1><p>{e(period)}</p>{_table(figures)}{body}"
        f"<h2>{e(t(lang, 'reports.below_duty'))}</h2>{retention}</body></html>"
    )
