"""Browser test fixtures: the whole video system, one shared Chromium and a runner for the
Playwright scripts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from video_system import VideoSystem, running
from walks import Answer, SharedChromium, Walk, run_walk

from testbed.rtsp import RtspServer

Browse = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def system(
    tmp_path_factory: pytest.TempPathFactory, rtsp_server: RtspServer
) -> Iterator[VideoSystem]:
    """Broker, central and an edge agent recording the RTSP camera, until the module ends."""
    system = VideoSystem(tmp_path_factory.mktemp("video"), rtsp_server)
    with running(system, camera_within=40):
        yield system


@pytest.fixture(scope="session")
def chromium() -> Iterator[SharedChromium]:
    """One headless Chromium for every browser script of the session."""
    shared = SharedChromium()
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture(scope="session")
def walk(chromium: SharedChromium) -> Walk:
    """Run one of this folder's scripts on the shared Chromium: `walk(script, options,
    timeout, answer=None)`; its JSON result (fails with its output unless it says ok)."""

    def run(
        script: str, options: dict[str, Any], timeout: float, answer: Answer | None = None
    ) -> dict[str, Any]:
        return run_walk(script, options, timeout, answer, chromium)

    return run


@pytest.fixture(scope="session")
def browse(walk: Walk) -> Browse:
    """Run video_pages.mjs with options; returns its JSON result (fails with its output)."""

    def run(timeout: float = 90, **options: Any) -> dict[str, Any]:
        return walk("video_pages.mjs", options, timeout)

    return run
