"""The big screen's data: one read-only call per refresh, scoped like every other read."""

from __future__ import annotations

import time

from aiohttp import web
from pydantic import BaseModel, Field

from central.api.common import current_user, json_response, read_query, run_db, services
from central.api.registry import RouteTable
from central.keys import CONFIG
from central.regulation.roles import Permission
from central.reports.dashboard import Focus, build_dashboard

routes = RouteTable()


class DashboardQuery(BaseModel):
    """Which organisation to show; the caller's own top organisation if absent."""

    org_id: int | None = Field(None, description="province, city, county or enterprise to show")


@routes.route(
    "GET",
    "/api/v1/dashboard",
    summary="Big-screen overview of an organisation",
    tag="reports",
    query=DashboardQuery,
    statuses=(200, 403, 404),
)
async def get_dashboard(request: web.Request) -> web.Response:
    """Org tree counts, alert trend and kinds, rankings and the latest alerts."""
    user = current_user(request, Permission.VIEW_REPORTS)
    q = read_query(request, DashboardQuery)
    svc = services(request)
    org = None
    if q.org_id is not None:
        org = await run_db(svc.orgs.get_org, user.scope, q.org_id)
    elif user.scope.root is not None and user.org_id is not None:
        org = await run_db(svc.orgs.get_org, user.scope, user.org_id)
    timezone = request.app[CONFIG].web.timezone
    data = await run_db(build_dashboard, svc.ldb, user.scope, Focus(org), time.time(), timezone)
    return json_response(data)
