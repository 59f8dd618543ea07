"""Browser test fixtures: the whole video system and a runner for the Playwright scripts."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from video_system import VideoSystem, wait_until

from testbed.rtsp import RtspServer

HERE = Path(__file__).resolve().parent
Browse = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def system(
    tmp_path_factory: pytest.TempPathFactory, rtsp_server: RtspServer
) -> Iterator[VideoSystem]:
    """Broker, central and an edge agent recording the RTSP camera, until the module ends."""
    system = VideoSystem(tmp_path_factory.mktemp("video"), rtsp_server)
    system.start()
    try:
        wait_until(system.camera_listed, 40, "central to list the edge's camera online")
        yield system
    except BaseException:
        print(system.logs())
        raise
    finally:
        system.stop()


@pytest.fixture(scope="session")
def browse() -> Browse:
    """Run video_pages.mjs with options; returns its JSON result (fails with its output)."""
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        pytest.fail("playwright-core is missing: run `npm ci --prefix tests/browser`")
    node = shutil.which("node")
    assert node, "node is not installed"

    def run(timeout: float = 90, **options: Any) -> dict[str, Any]:
        done = subprocess.run(
            [node, str(HERE / "video_pages.mjs"), json.dumps(options)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=HERE,
        )
        lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
        assert lines, f"no result from the browser script:\n{done.stdout}\n{done.stderr}"
        result: dict[str, Any] = json.loads(lines[-1])
        assert result.get("ok"), f"browser script failed: {result}\n{done.stderr[-2000:]}"
        return result

    return run
