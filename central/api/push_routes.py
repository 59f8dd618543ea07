"""Web Push subscriptions and per-organisation webhooks."""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from central.alerts.endpoint_policy import EndpointPolicy
from central.alerts.push_rules import PushFilters
from central.api.common import (
    audit,
    current_user,
    json_response,
    path_int,
    read_body,
    run_db,
    services,
)
from central.api.registry import RouteTable
from central.errors import InvalidInputError, NotFoundError, ThrottledError
from central.regulation.roles import Permission

routes = RouteTable()


async def _check_endpoint(request: web.Request, url: str) -> None:
    """400 unless central may send to `url` (https, every address public or allow-listed)."""
    await EndpointPolicy(services(request).push_config.allow_networks).check(url)


class SubscriptionKeys(BaseModel):
    """The browser's PushSubscription keys (base64url)."""

    p256dh: str = Field(min_length=20, max_length=200)
    auth: str = Field(min_length=8, max_length=100)


class SubscriptionIn(BaseModel):
    """A PushSubscription as `subscription.toJSON()` gives it."""

    endpoint: str = Field(min_length=8, max_length=2000)
    keys: SubscriptionKeys


class WebhookIn(BaseModel):
    """A webhook receiving the alerts of an organisation's subtree."""

    org_id: int
    url: str = Field(min_length=8, max_length=2000)
    format: str = Field("json", pattern="^(json|wecom|dingtalk)$")
    secret: str = Field("", max_length=200, description="HMAC key (json) or DingTalk secret")
    generate_secret: bool = Field(
        False, description="central makes the HMAC key (json); the answer shows it, once"
    )
    filters: PushFilters = PushFilters()


class WebhookPatch(BaseModel):
    """Pause or resume a webhook."""

    enabled: bool


STATS_WINDOW_S = 7 * 86400.0


@routes.route(
    "GET", "/api/v1/push/vapid-public-key", summary="Key for PushManager.subscribe", tag="push"
)
async def vapid_key(request: web.Request) -> web.Response:
    """The VAPID public key (applicationServerKey), base64url; 404 when push is off."""
    current_user(request)
    key = services(request).vapid_public_key
    if key is None:
        raise NotFoundError("Web Push is not configured on this server")
    return json_response({"public_key": key})


@routes.route(
    "POST",
    "/api/v1/push/subscriptions",
    summary="Subscribe this browser",
    tag="push",
    body=SubscriptionIn,
    statuses=(201,),
)
async def subscribe(request: web.Request) -> web.Response:
    """Register the caller's browser push subscription."""
    user = current_user(request)
    body = await read_body(request, SubscriptionIn)
    await _check_endpoint(request, body.endpoint)
    sub_id = await run_db(
        services(request).push.subscribe, user, body.endpoint, body.keys.p256dh, body.keys.auth
    )
    await audit(request, "push_subscribe", f"subscription:{sub_id}", {"endpoint": body.endpoint})
    return json_response({"id": sub_id}, status=201)


@routes.route("GET", "/api/v1/push/subscriptions", summary="My push subscriptions", tag="push")
async def list_subscriptions(request: web.Request) -> web.Response:
    """The caller's subscriptions."""
    user = current_user(request)
    return json_response({"items": await run_db(services(request).push.subscriptions, user)})


@routes.route(
    "DELETE", "/api/v1/push/subscriptions/{subscription_id}", summary="Unsubscribe", tag="push"
)
async def unsubscribe(request: web.Request) -> web.Response:
    """Remove one of the caller's subscriptions."""
    user = current_user(request)
    await run_db(services(request).push.unsubscribe, user, path_int(request, "subscription_id"))
    return json_response({"ok": True})


@routes.route("GET", "/api/v1/webhooks", summary="Webhooks in scope", tag="push")
async def list_webhooks(request: web.Request) -> web.Response:
    """Webhooks (secrets hidden) with their last 7 days of deliveries and the last error."""
    user = current_user(request, Permission.MANAGE_WEBHOOKS)
    push = services(request).push
    since = time.time() - STATS_WINDOW_S

    def with_stats() -> list[dict[str, Any]]:
        hooks = push.list_webhooks(user.scope)
        return [{**h, "deliveries": push.delivery_stats(h["id"], since)} for h in hooks]

    return json_response({"items": await run_db(with_stats), "stats_window_s": STATS_WINDOW_S})


@routes.route(
    "POST", "/api/v1/webhooks", summary="Add a webhook", tag="push", body=WebhookIn, statuses=(201,)
)
async def add_webhook(request: web.Request) -> web.Response:
    """Send an organisation's alerts to a JSON, WeCom or DingTalk robot endpoint."""
    user = current_user(request, Permission.MANAGE_WEBHOOKS)
    body = await read_body(request, WebhookIn)
    await _check_endpoint(request, body.url)
    secret = body.secret
    if body.generate_secret:
        if body.format != "json" or secret:
            raise InvalidInputError(
                "generate_secret: only for the json format, and not with a secret of your own"
            )
        secret = secrets.token_urlsafe(32)
    hook = await run_db(
        services(request).push.add_webhook,
        user.scope,
        body.org_id,
        body.url,
        body.format,
        secret,
        body.filters,
    )
    await audit(
        request,
        "webhook_create",
        f"webhook:{hook['id']}",
        {"url": body.url, "format": body.format, "org_id": body.org_id},
        org_path=hook["org_path"],
    )
    if body.generate_secret:
        hook = {**hook, "secret": secret}  # shown this once; never again
    return json_response(hook, status=201)


@routes.route(
    "PATCH",
    "/api/v1/webhooks/{webhook_id}",
    summary="Pause or resume a webhook",
    tag="push",
    body=WebhookPatch,
)
async def patch_webhook(request: web.Request) -> web.Response:
    """A paused webhook receives nothing until resumed (alerts meanwhile are not sent later)."""
    user = current_user(request, Permission.MANAGE_WEBHOOKS)
    body = await read_body(request, WebhookPatch)
    hook = await run_db(
        services(request).push.set_webhook_enabled,
        user.scope,
        path_int(request, "webhook_id"),
        body.enabled,
    )
    await audit(
        request,
        "webhook_update",
        f"webhook:{hook['id']}",
        {"enabled": body.enabled},
        org_path=hook["org_path"],
    )
    return json_response(hook)


@routes.route(
    "POST",
    "/api/v1/webhooks/{webhook_id}/test",
    summary="Send a test message to a webhook",
    tag="push",
)
async def test_webhook(request: web.Request) -> web.Response:
    """Post a test message now, through the same address checks as a delivery; the outcome."""
    user = current_user(request, Permission.MANAGE_WEBHOOKS)
    svc = services(request)
    row = await run_db(svc.push.webhook_row, user.scope, path_int(request, "webhook_id"))
    if not await svc.webhook_tests.allow_now(str(user.id)):
        raise ThrottledError(60.0)
    if svc.dispatcher is None:
        raise NotFoundError("push is not running on this server")
    ok, error = await svc.dispatcher.send_test(row)
    await audit(
        request,
        "webhook_test",
        f"webhook:{row['id']}",
        {"ok": ok, "error": error},
        org_path=row["org_path"],
    )
    return json_response({"ok": ok, "error": error})


@routes.route("DELETE", "/api/v1/webhooks/{webhook_id}", summary="Remove a webhook", tag="push")
async def delete_webhook(request: web.Request) -> web.Response:
    """Stop sending to a webhook."""
    user = current_user(request, Permission.MANAGE_WEBHOOKS)
    webhook_id = path_int(request, "webhook_id")
    svc = services(request)
    hook = await run_db(svc.push.get_webhook, user.scope, webhook_id)
    await run_db(svc.push.delete_webhook, user.scope, webhook_id)
    await audit(
        request,
        "webhook_delete",
        f"webhook:{webhook_id}",
        {"url": hook["url"]},
        org_path=hook["org_path"],
    )
    return json_response({"ok": True})
