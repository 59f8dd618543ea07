"""Fixtures of the delivery chaos tests: a broker with the shipped policy, central, edges."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_world import MqttWorld


@pytest.fixture
def world(tmp_path: Path) -> Iterator[MqttWorld]:
    """Broker and central running; sites `site-a` and `site-b` enrolled; edges not started."""
    w = MqttWorld(tmp_path)
    w.add_site("site-a")
    w.add_site("site-b")
    w.broker.start()
    try:
        w.central.start()
        yield w
    finally:
        w.close()
