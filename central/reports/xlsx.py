"""The report as an Excel workbook (``format=xlsx``): the catalogue's words, the site's dates.

One sheet, three columns (section, item, value), one figure a row like the CSV, but with
headers and labels in the caller's language, enum values in words, times on the site's
clock (Excel has no time zones, so they are written as local wall-clock times) and rates
as percentages Excel can sum and chart.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook

from central.web.i18n import catalogue, t

Row = tuple[str, str, Any]
DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
PERCENT_FORMAT = "0.0%"


def _local(iso: str, timezone: str) -> datetime:
    """A report period bound (UTC ISO) as a naive local datetime for the cell."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)
    return moment.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def report_rows(report: dict[str, Any], lang: str, timezone: str) -> list[Row]:
    """(section, item, value) rows of the report, labelled in `lang` (pure)."""
    words = catalogue(lang)
    a = report["alerts"]

    def label(group: str, value: str) -> str:
        return words.get(f"{group}.{value}", value)

    def minutes(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / 60, 1)

    period, figures = t(lang, "xlsx.period"), t(lang, "xlsx.figures")
    rows: list[Row] = [
        (period, t(lang, "filter.from"), _local(report["period"]["from"], timezone)),
        (period, t(lang, "filter.to"), _local(report["period"]["to"], timezone)),
        (figures, t(lang, "reports.alerts"), a["total"]),
        (figures, t(lang, "xlsx.mtta_min"), minutes(a["mean_time_to_acknowledge_s"])),
        (figures, t(lang, "xlsx.mttr_min"), minutes(a["mean_time_to_rectify_s"])),
        (figures, t(lang, "reports.overdue"), a["overdue"]),
        (figures, t(lang, "reports.cameras"), report["cameras"]["count"]),
        (figures, t(lang, "reports.online_rate"), report["cameras"]["online_rate"]),
        (figures, t(lang, "reports.recording"), report["recording"]["completeness"]),
        (figures, t(lang, "reports.retention"), report["retention"]["compliance_rate"]),
    ]
    for section, group in (("by_kind", "kind"), ("by_station", "station"), ("by_state", "state")):
        name = t(lang, f"reports.{section}")
        rows += [(name, label(group, k), n) for k, n in a[section].items()]
    name = t(lang, "reports.by_enterprise")
    rows += [(name, e["name"], e["count"]) for e in a["by_enterprise"]]
    name = t(lang, "xlsx.below_duty_days")
    rows += [(name, s["name"], s["days"]) for s in report["retention"]["sites_below_duty"]]
    return rows


def report_xlsx(report: dict[str, Any], title: str, lang: str, timezone: str) -> bytes:
    """The workbook's bytes: a title row, the headers, then one row per figure."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = t(lang, "xlsx.sheet")
    sheet.append([title])
    sheet.append([t(lang, "xlsx.section"), t(lang, "xlsx.item"), t(lang, "xlsx.value")])
    rates = {
        t(lang, key) for key in ("reports.online_rate", "reports.recording", "reports.retention")
    }
    for section, item, value in report_rows(report, lang, timezone):
        sheet.append([section, item, value])
        for text in sheet[sheet.max_row]:
            if isinstance(text.value, str):
                # Text, never a formula: a station or name starting with "=" is the edge
                # box's or a user's words (openpyxl would store it as a formula that runs).
                text.data_type = "s"
        cell = sheet.cell(row=sheet.max_row, column=3)
        if isinstance(value, datetime):
            cell.number_format = DATE_FORMAT
        elif item in rates and value is not None:
            cell.number_format = PERCENT_FORMAT
    for column, width in (("A", 22), ("B", 30), ("C", 20)):
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = "A3"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
