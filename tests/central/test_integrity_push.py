"""A tamper finding is pushed like any alert: the city's webhook gets `footage_tampered`."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from test_integrity_anchors import anchor, chain, sha
from test_push_delivery import pushing as push_world  # noqa: F401 - a fixture, used by name
from test_push_jobs import add_webhook, wait_for

from central.ingest.pipeline import Ingest
from central.keys import INGEST_STORE

pytestmark = pytest.mark.asyncio


async def test_a_fork_in_the_anchored_chain_reaches_the_city_webhook(push_world: Any) -> None:  # noqa: F811
    central, receiver, base = push_world
    await add_webhook(central, base)
    ingest = Ingest(central.client.app[INGEST_STORE])
    t0 = time.time() - 86400
    first = chain([sha(i) for i in range(3)], t0)
    rebuilt = chain([sha(i) for i in range(3)], t0, prev=sha(77))  # another chain, same paths
    site = "demo-canteen-a"
    await asyncio.to_thread(ingest.process, [anchor(first, site=site), anchor(rebuilt, site=site)])
    await wait_for(lambda: len(receiver.to("/hook")) == 1)
    body = json.loads(receiver.to("/hook")[0]["body"])
    assert body["alert"]["kind"] == "footage_tampered"
    assert body["alert"]["title"] == "录像被篡改 footage tampered"
    assert body["alert"]["severity"] == "critical"
    assert body["alert"]["camera"] == "cam1" and body["alert"]["site"] == "demo-canteen-a"
