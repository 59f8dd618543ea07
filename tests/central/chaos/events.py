"""Events as a detector makes them, numbered per camera so order can be checked."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from uuid import uuid4

from mqtt_world import CentralProcess

from fsv_contract import EventPayload


def make_events(site: str, count: int, cameras: int = 4, first: int = 0) -> list[EventPayload]:
    """`count` start-phase events spread over `cameras` cameras, numbered from `first`."""
    now = datetime.now(UTC)
    return [
        EventPayload(
            event_id=uuid4(),
            site=site,
            camera=f"cam-{i % cameras}",
            phase="start",
            kind="no_chef_hat",
            station="kitchen_prep",
            rule="hat",
            start=now,
            score=0.8,
            details={"n": i},
        )  # fmt: skip
        for i in range(first, first + count)
    ]


def check_exactly_once_in_order(central: CentralProcess, site: str, expected: int) -> None:
    """Central holds `expected` distinct events of `site`, each camera's in creation order."""
    stored = central.query(
        "select event_id, camera, details from events where site = ? order by id", (site,)
    )
    rows = [(eid, camera, json.loads(details)["n"]) for eid, camera, details in stored]
    assert len(rows) == expected
    assert len({r[0] for r in rows}) == expected
    assert sorted(r[2] for r in rows) == list(range(expected))
    by_camera: dict[str, list[int]] = defaultdict(list)
    for _, camera, n in rows:
        by_camera[camera].append(n)
    for camera, numbers in by_camera.items():
        assert numbers == sorted(numbers), f"{camera} out of order"
