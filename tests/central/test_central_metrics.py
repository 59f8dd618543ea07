"""Central's /metrics: Prometheus text, for admins or a scraper on this host only."""

from __future__ import annotations

import pytest
from central_support import Central
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.asyncio


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_for_a_local_scraper(central: Central) -> None:
    await central.event("demo-canteen-a", "cam1")
    resp = await central.client.get("/metrics")  # the test client is a loopback peer
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    got = samples(await resp.text())
    assert got[("fsv_sites", ())] == 3.0
    assert got[("fsv_push_pending", ())] == 0.0
    assert got[("fsv_ingest_backlog", ())] == 0.0
    assert got[("fsv_mqtt_connected", ())] == 0.0  # the fixture's broker is unreachable
    assert got[("fsv_ingest_messages_total", (("outcome", "received"),))] == 0.0
    assert got[("fsv_video_upstreams", ())] == 0.0
    assert ("fsv_alert_feed_behind", ()) in got


async def test_metrics_through_a_proxy_need_an_admin(central: Central) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    resp = await central.client.get("/metrics", headers=forwarded)
    assert resp.status == 403
    monitor = await central.token("city-monitor")
    resp = await central.client.get("/metrics", headers={**forwarded, **monitor})
    assert resp.status == 403
    admin = await central.token("admin")
    resp = await central.client.get("/metrics", headers={**forwarded, **admin})
    assert resp.status == 200 and "fsv_push_outcomes" in await resp.text()
