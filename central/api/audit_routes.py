"""The audit log for admins: filtered pages and a CSV export of the filtered entries."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal

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
from central.keys import CONFIG
from central.regulation.audit_search import PAGE_MAX, AuditFilter, AuditSearch, Cursor
from central.regulation.roles import Permission
from central.reports.builder import csv_cell
from central.web import i18n

routes = RouteTable()
EXPORT_MAX_ROWS = 50_000


class AuditQuery(BaseModel):
    """Filters and page of the audit log; times are epoch seconds or ISO 8601 with a zone."""

    actor: str | None = Field(None, max_length=100, description="user name, exact")
    action: str | None = Field(None, max_length=50, description="action, exact")
    target: str | None = Field(
        None, max_length=200, description='exact ("webhook:3") or a kind of target ("webhook")'
    )
    text: str | None = Field(None, max_length=200, description="words in any field, any case")
    since: str | None = Field(None, alias="from", description="first instant (inclusive)")
    until: str | None = Field(None, alias="to", description="end (exclusive)")
    before: str | None = Field(None, max_length=60, description="the previous page's `next`")
    limit: int = Field(100, ge=1, le=PAGE_MAX)
    format: Literal["json", "csv"] = "json"


def _filter(q: AuditQuery) -> AuditFilter:
    return AuditFilter(
        actor=q.actor or None,
        action=q.action or None,
        target=q.target or None,
        since=parse_time(q.since),
        until=parse_time(q.until),
        text=q.text or None,
    )


def _cell(value: Any) -> str:
    return str(csv_cell("" if value is None else str(value)))


def audit_csv(rows: list[dict[str, Any]], lang: str, timezone: str) -> str:
    """The entries as CSV: local time in the site's zone, the action in words, then raw fields."""
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ("time", "actor", "action", "action_code", "target", "ip", "org_path", "detail")
    writer.writerow([i18n.t(lang, f"audit.col_{c}") for c in columns])
    known = i18n.catalogue(lang)
    for r in rows:
        label = known.get(f"audit_action.{r['action']}", r["action"])
        detail = json.dumps(r["detail"], ensure_ascii=False, sort_keys=True)
        writer.writerow(
            [
                _cell(x)
                for x in (
                    i18n.local_time(r["ts"], timezone),
                    r["username"],
                    label,
                    r["action"],
                    r["target"],
                    r["ip"],
                    r["org_path"],
                    detail,
                )
            ]
        )
    return "\ufeff" + out.getvalue()  # the BOM makes spreadsheet programs read UTF-8


@routes.route(
    "GET",
    "/api/v1/audit",
    summary="The audit log (admins)",
    tag="audit",
    query=AuditQuery,
    produces=("application/json", "text/csv"),
)
async def get_audit(request: web.Request) -> web.StreamResponse:
    """Entries newest first: who, when, what, from where; `next` continues with `before`.

    Each page examines a bounded number of entries along one index; `partial` says the page
    stopped there before it was full (continue with `next`). CSV holds every matching entry
    up to 50,000 and is itself audited.
    """
    user = current_user(request, Permission.VIEW_AUDIT)
    q = read_query(request, AuditQuery)
    f = _filter(q)
    cursor = Cursor.decode(q.before) if q.before else None
    search = AuditSearch(services(request).ldb)
    if q.format == "json":
        page = await run_db(search.page, user.scope, f, cursor, q.limit)
        return json_response(page.as_json(q.limit))
    rows = await run_db(lambda: list(search.export(user.scope, f, EXPORT_MAX_ROWS)))
    detail = {k: v for k, v in q.model_dump(by_alias=True).items() if v and k != "format"}
    await audit(request, "audit_export", "audit_log", {**detail, "rows": len(rows)})
    lang = i18n.lang_of(request)
    text = await run_db(audit_csv, rows, lang, request.app[CONFIG].web.timezone)
    headers = {"Content-Disposition": 'attachment; filename="audit-log.csv"'}
    if len(rows) >= EXPORT_MAX_ROWS:
        headers["X-FSV-Truncated"] = str(EXPORT_MAX_ROWS)
    return web.Response(text=text, content_type="text/csv", charset="utf-8", headers=headers)
