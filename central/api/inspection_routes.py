"""Inspections of enterprises: recorded by regulators, the latest shown on the public page."""

from __future__ import annotations

import time

from aiohttp import web
from pydantic import BaseModel, Field

from central.api.common import audit, current_user, json_response, path_int, read_body, run_db
from central.api.common import services as svc
from central.api.registry import RouteTable
from central.regulation.inspections import Rating, Result
from central.regulation.roles import Permission

routes = RouteTable()


class InspectionIn(BaseModel):
    """The result (and rating) of an on-site inspection."""

    result: Result = Field(description="compliant (符合), basically_compliant, non_compliant")
    rating: Rating | None = Field(None, description="excellent (优秀), good (良好) or fair (一般)")
    inspected_at: float | None = Field(None, description="UTC seconds of the visit (default now)")
    note: str = Field("", max_length=2000, description="for regulators; never shown publicly")


@routes.route(
    "POST",
    "/api/v1/orgs/{org_id}/inspections",
    summary="Record an inspection of an enterprise",
    tag="orgs",
    body=InspectionIn,
    statuses=(201,),
)
async def record_inspection(request: web.Request) -> web.Response:
    """Store the inspection; the canteen's public page shows the latest result and rating."""
    user = current_user(request, Permission.RECORD_INSPECTION)
    body = await read_body(request, InspectionIn)
    row = await run_db(
        svc(request).inspections.record,
        user.scope,
        path_int(request, "org_id"),
        result=body.result,
        rating=body.rating,
        inspected_at=body.inspected_at if body.inspected_at is not None else time.time(),
        note=body.note,
        inspector_id=user.id,
    )
    await audit(
        request,
        "inspection_record",
        f"org:{row['org_id']}",
        {"result": row["result"], "rating": row["rating"]},
        org_path=row["org_path"],
    )
    return json_response(row, status=201)


@routes.route(
    "GET",
    "/api/v1/orgs/{org_id}/inspections",
    summary="Inspections of an enterprise, newest first",
    tag="orgs",
)
async def list_inspections(request: web.Request) -> web.Response:
    """Inspections of one enterprise in the caller's scope."""
    user = current_user(request, Permission.VIEW)
    items = await run_db(svc(request).inspections.list_for, user.scope, path_int(request, "org_id"))
    return json_response({"items": items})
