"""Reports (JSON, CSV, printable HTML)."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from central.api.common import (
    audit,
    current_user,
    json_response,
    parse_time,
    read_query,
    run_db,
    services,
)
from central.api.registry import RouteTable
from central.errors import InvalidInputError
from central.keys import CONFIG
from central.regulation.roles import Permission
from central.regulation.scope import Scope
from central.reports.builder import build_report, report_csv
from central.reports.xlsx import report_xlsx
from central.web import i18n
from central.web.report_print import report_html

routes = RouteTable()
MAX_PERIOD_S = 400 * 86400.0
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ReportQuery(BaseModel):
    """Which subtree and period; times are epoch seconds or ISO 8601 with a zone."""

    org_id: int | None = Field(None, description="default: the caller's whole scope")
    since: str | None = Field(None, alias="from", description="default: 30 days ago")
    until: str | None = Field(None, alias="to", description="default: now")
    format: Literal["json", "csv", "xlsx", "html"] = "json"


@routes.route(
    "GET",
    "/api/v1/reports",
    summary="Report of a subtree and period",
    tag="reports",
    query=ReportQuery,
    produces=("application/json", "text/csv", XLSX_TYPE, "text/html"),
)
async def get_report(request: web.Request) -> web.StreamResponse:
    """Alerts by kind/station/enterprise, response times, online, recording, retention."""
    user = current_user(request, Permission.VIEW_REPORTS)
    q = read_query(request, ReportQuery)
    until = parse_time(q.until) or time.time()
    since = parse_time(q.since) or until - 30 * 86400.0
    if not 0 < until - since <= MAX_PERIOD_S:
        raise InvalidInputError("the period must be positive and at most 400 days")
    svc = services(request)
    lang = i18n.lang_of(request)
    scope, title = user.scope, i18n.t(lang, "reports.title")
    if q.org_id is not None:
        org = await run_db(svc.orgs.get_org, user.scope, q.org_id)
        scope, title = Scope(org["org_path"]), f"{org['name']} — {title}"
    report = await run_db(build_report, svc.ldb, scope, since, until)
    await audit(request, "report_view", scope.root or "/", {"format": q.format})
    if q.format == "csv":
        return web.Response(
            text=report_csv(report),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="report.csv"'},
        )
    if q.format == "xlsx":
        timezone = request.app[CONFIG].web.timezone
        data = await asyncio.to_thread(report_xlsx, report, title, lang, timezone)
        return web.Response(
            body=data,
            content_type=XLSX_TYPE,
            headers={"Content-Disposition": 'attachment; filename="report.xlsx"'},
        )
    if q.format == "html":
        return web.Response(
            text=report_html(report, title, lang, request.app[CONFIG].web.timezone),
            content_type="text/html",
            charset="utf-8",
        )
    return json_response(report)
