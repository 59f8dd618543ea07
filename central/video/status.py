"""Each site's uplink as the relay sees it: what arrives, and whether it keeps up."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from central.regulation.scope import Scope, in_scope
from central.video.upstream import Upstream

KEEPING_UP = 0.9  # media seconds per second below which a live uplink is starved


def site_status(
    upstreams: Iterable[Upstream], scope: Scope, reported: dict[str, float | None] | None = None
) -> list[dict[str, Any]]:
    """Per site in scope: upstreams, viewers, bits/s in, and `starved` when live video lags.

    `reported` adds each site's own figure from its heartbeat (`reported_bps`); sites
    without upstreams are listed too when they reported one.

    A live upstream is starved when it delivers less than KEEPING_UP media seconds per
    second, or the edge reports dropping packets because its link was too slow.
    """
    sites: dict[str, dict[str, Any]] = {}
    for up in upstreams:
        if not up.org_path or not in_scope(scope, up.org_path):
            continue
        rate, bps = up.rates()
        entry = sites.setdefault(
            up.key.site,
            {"site": up.key.site, "upstreams": 0, "viewers": 0, "in_bps": 0.0, "starved": False},
        )
        entry["upstreams"] += 1
        entry["viewers"] += len(up.viewers)
        entry["in_bps"] += bps
        lagging = rate is not None and rate < KEEPING_UP
        if up.key.shared and (lagging or up.dropping(time.monotonic())):
            entry["starved"] = True
    for site, rate in (reported or {}).items():
        if site in sites:
            sites[site]["reported_bps"] = rate
        elif rate:
            sites[site] = {
                "site": site,
                "upstreams": 0,
                "viewers": 0,
                "in_bps": 0.0,
                "starved": False,
                "reported_bps": rate,
            }
    return sorted(sites.values(), key=lambda s: str(s["site"]))
