"""Prometheus metrics of central at /metrics: ingest, alert feed, push, video relay, sites.

Read when scraped (a collector over the live components and read-only queries), so nothing
is counted twice and nothing global is kept. Only an administrator's session, or a scraper
on the same host talking to central directly (loopback peer, no proxy in between), gets them.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from central.api.common import COOKIE, SERVICES, run_db
from central.errors import AuthError
from central.keys import BROKER, DATABASE, INGEST, INGEST_STORE, VIDEO
from central.regulation.roles import Role

# Ingest lag is summarised over the latest events (by id: an index walk, not a scan).
LAG_WINDOW = 1000
# A site counts as reporting when its last heartbeat is at most this old.
REPORTING_S = 90.0


class CentralCollector(Collector):
    """Central's figures at scrape time."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        """Every metric family, read now (call from a worker thread: it queries SQLite)."""
        app = self.app
        stats = app[INGEST_STORE].stats()
        messages = CounterMetricFamily(
            "fsv_ingest_messages", "MQTT messages by outcome", labels=["outcome"]
        )
        for outcome in ("received", "accepted", "duplicates", "rejected"):
            messages.add_metric([outcome], stats.get(outcome, 0))
        yield messages
        ingest = app.get(INGEST)
        yield _gauge("fsv_ingest_backlog", "messages delivered, not yet written",
                     ingest.backlog if ingest is not None else 0)  # fmt: skip
        broker = app.get(BROKER)
        yield _gauge("fsv_mqtt_connected", "1 while connected to the broker",
                     broker is not None and broker.connected.is_set())  # fmt: skip
        yield from self._database_figures()
        yield from self._push()
        yield from self._video()

    def _database_figures(self) -> Iterator[Metric]:
        now = time.time()
        with self.app[DATABASE].read() as db:
            lags = sorted(
                r[0]
                for r in db.execute(
                    "select ingested_at - created_at from events where created_at is not null "
                    "order by id desc limit ?",
                    [LAG_WINDOW],
                )
            )
            cursor = db.execute(
                "select value from ingest_counters where name = 'feed_cursor'"
            ).fetchone()
            seq = int(cursor[0]) if cursor else 0
            last = db.execute("select coalesce(max(change_seq), 0) from events").fetchone()[0]
            oldest = db.execute(
                "select ingested_at from events where change_seq > ? order by change_seq limit 1",
                [seq],
            ).fetchone()
            sites = db.execute("select count(*) from sites").fetchone()[0]
            reporting = db.execute(
                "select count(*) from agent_status where last_heartbeat_at >= ?",
                [now - REPORTING_S],
            ).fetchone()[0]
        lag = GaugeMetricFamily(
            "fsv_ingest_lag_seconds", f"event created → stored, over the last {LAG_WINDOW}",
            labels=["quantile"],
        )  # fmt: skip
        if lags:
            for q in (0.5, 0.95, 1.0):
                lag.add_metric([str(q)], lags[min(len(lags) - 1, int(q * (len(lags) - 1)))])
        yield lag
        yield _gauge("fsv_alert_feed_behind", "event changes not yet handed to alerts", last - seq)
        yield _gauge("fsv_alert_feed_lag_seconds", "age of the oldest change not yet handed on",
                     now - oldest[0] if oldest else 0.0)  # fmt: skip
        yield _gauge("fsv_sites", "sites registered", sites)
        yield _gauge("fsv_sites_reporting", f"sites with a heartbeat in {REPORTING_S:.0f} s",
                     reporting)  # fmt: skip

    def _push(self) -> Iterator[Metric]:
        svc = self.app.get(SERVICES)
        if svc is None:
            return
        outcomes = CounterMetricFamily(
            "fsv_push_outcomes", "push jobs settled since start", labels=["status"]
        )
        dispatcher = svc.dispatcher
        for status, n in sorted((dispatcher.outcomes if dispatcher else {}).items()):
            outcomes.add_metric([status], n)
        yield outcomes
        yield _gauge("fsv_push_pending", "push jobs not yet delivered", svc.jobs.pending())

    def _video(self) -> Iterator[Metric]:
        video = self.app.get(VIDEO)
        upstreams = video.hub.upstreams() if video is not None else []
        viewers = sum(len(u.viewers) + (1 if u.hls is not None else 0) for u in upstreams)
        yield _gauge("fsv_video_upstreams", "cameras streaming into the relay", len(upstreams))
        yield _gauge("fsv_video_viewers", "viewers of those streams", viewers)


def _gauge(name: str, text: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=float(value))


METRICS_REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)


def add_metrics(app: web.Application) -> None:
    """Serve /metrics (admins, or a scraper on this host)."""
    registry = CollectorRegistry()
    registry.register(CentralCollector(app))
    app[METRICS_REGISTRY] = registry
    app.router.add_get("/metrics", metrics)


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition."""
    if not _local_scraper(request) and not await _admin(request):
        raise web.HTTPForbidden(text="metrics: administrators, or a scraper on this host")
    body = await run_db(generate_latest, request.app[METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _local_scraper(request: web.Request) -> bool:
    """A loopback peer that is no proxy: a proxy on this host forwards anyone's request."""
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    svc = request.app.get(SERVICES)
    trusted = svc.web.trusted_proxies if svc is not None else []
    return peer.is_loopback and not any(peer in net for net in trusted)


async def _admin(request: web.Request) -> bool:
    svc = request.app.get(SERVICES)
    if svc is None:
        return False
    header = request.headers.get("Authorization", "")
    token, kind = (header[7:].strip(), "bearer") if header.lower().startswith("bearer ") else (
        request.cookies.get(COOKIE, ""), "cookie")  # fmt: skip
    if not token:
        return False
    try:
        session = await run_db(svc.sessions.resolve, token, kind)
    except AuthError:
        return False
    return session.user.role is Role.ADMIN
