"""Fixtures of the system tests: the demo cameras' RTSP server, a model site."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.demo import camera_streams
from testbed.footage import Footage
from testbed.rtsp import RtspServer
from tests.system.model_site import ModelSite


@pytest.fixture(scope="session")
def demo_rtsp(footage: Footage) -> Iterator[RtspServer]:
    """One RTSP server with the demo cameras for the session (do not stop it in a test)."""
    with RtspServer(camera_streams(footage)) as server:
        yield server


@pytest.fixture
def model_site(tmp_path: Path, demo_rtsp: RtspServer) -> Iterator[ModelSite]:
    """A prepared model site (broker, central config, seeded); stopped afterwards."""
    site = ModelSite(tmp_path, demo_rtsp)
    try:
        site.prepare()
        yield site
    finally:
        site.close()
