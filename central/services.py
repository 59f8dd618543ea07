"""The regulator side's services, built once per application and reached through one AppKey."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from central.alerts.hooks import RegulatorHooks
from central.alerts.push import PushStore
from central.alerts.push_dispatch import PushDispatcher
from central.alerts.push_jobs import PushJobs
from central.alerts.store import AlertStore, CommandSender
from central.alerts.updates import UpdateHub
from central.regulation.audit import AuditLog
from central.regulation.inspections import Inspections
from central.regulation.org import OrgStore
from central.regulation.public import PublicLinks, RateLimiter
from central.regulation.sessions import SessionPolicy, SessionStore, TokenUses
from central.regulation.throttle import LoginThrottle, SharedLoginThrottle
from central.regulation.users import UserStore
from central.schema import LockedDb, apply_migrations
from central.settings import PushConfig, WebConfig


@dataclass
class Services:
    """Every store and helper a regulator handler may call."""

    ldb: LockedDb
    web: WebConfig
    push_config: PushConfig
    evidence_dir: Path
    orgs: OrgStore
    users: UserStore
    sessions: SessionStore
    alerts: AlertStore
    audit: AuditLog
    push: PushStore
    jobs: PushJobs
    public: PublicLinks
    inspections: Inspections
    hooks: RegulatorHooks
    throttle: LoginThrottle
    token_uses: TokenUses
    public_rate: RateLimiter
    updates: UpdateHub = field(default_factory=UpdateHub)
    vapid_public_key: str | None = None
    # Test messages to webhooks: a few a minute per admin, so the button is no request cannon.
    webhook_tests: RateLimiter = field(
        default_factory=lambda: RateLimiter(WEBHOOK_TESTS_PER_MIN, 60.0)
    )
    dispatcher: PushDispatcher | None = field(default=None)


WEBHOOK_TESTS_PER_MIN = 6


def shared_limits(services: Services, ldb: LockedDb) -> None:
    """Keep the public view's and the webhook tests' rate limits and the token audits'
    hours in the database (several nodes), with the limits the in-memory ones had."""
    from central.regulation.shared_limits import SharedRateLimiter, SharedTokenUses

    public = services.public_rate
    services.public_rate = SharedRateLimiter(ldb, "public", public.limit, public.window_s)
    tests = services.webhook_tests
    services.webhook_tests = SharedRateLimiter(ldb, "webhook-tests", tests.limit, tests.window_s)
    services.token_uses = SharedTokenUses(ldb, services.token_uses.every_s)


def login_throttle(
    web: WebConfig, shared: LockedDb | None = None, name: str = "users"
) -> LoginThrottle:
    """A login throttle with the configured limits (users, and sites uploading media).

    With `shared` (several nodes) the failures are counted in that database under `name`.
    """
    limits: dict[str, Any] = {
        "pair_free": web.login_max_failures,
        "client_free": web.login_client_max_failures,
        "first_delay_s": web.login_delay_s,
        "max_delay_s": web.login_max_delay_s,
        "forget_s": web.login_window_s,
    }
    if shared is not None:
        return SharedLoginThrottle(shared, name, **limits)
    return LoginThrottle(**limits)


def build_services(
    ldb: LockedDb,
    web: WebConfig,
    push_config: PushConfig,
    data_dir: Path,
    send_command: CommandSender | None,
    node_id: str | None = None,
) -> Services:
    """Apply the regulator migrations and wire the stores (the dispatcher comes later).

    `node_id` names this node among several sharing the database (None: a single node).
    """
    apply_migrations(ldb)
    orgs = OrgStore(ldb)
    alerts = AlertStore(ldb, send_command)
    # Several nodes (`node_id` given) claim push jobs; an attempt ends within timeout_s.
    jobs = PushJobs(ldb, push_config.expire_s, node_id, 2 * push_config.timeout_s + 10)
    alerts.on_created = jobs.create_many
    updates = UpdateHub()
    alerts.announce = updates.alert_changed
    hooks = RegulatorHooks(ldb, orgs, alerts)
    hooks.announce_state = updates.camera_state
    services = Services(
        ldb=ldb,
        web=web,
        push_config=push_config,
        evidence_dir=web.evidence_dir or data_dir / "evidence",
        orgs=orgs,
        users=UserStore(ldb),
        sessions=SessionStore(
            ldb,
            SessionPolicy(web.session_hours * 3600, web.idle_minutes * 60, web.token_max_days),
        ),
        alerts=alerts,
        audit=AuditLog(ldb),
        push=PushStore(ldb),
        jobs=jobs,
        public=PublicLinks(ldb),
        inspections=Inspections(ldb),
        hooks=hooks,
        throttle=login_throttle(web),
        token_uses=TokenUses(),
        public_rate=RateLimiter(web.public_rate_per_min, 60.0),
        updates=updates,
    )
    return services
