"""Video quotas in the replay page: a refused replay and a refused export say why, in Chinese."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from regulator_system import RegulatorSystem, camera_jpeg
from video_system import CAMERA, SITE

from central.config import BrokerAdminConfig

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
MESSAGES = json.loads(
    (HERE.parents[1] / "central" / "web" / "messages" / "zh-CN.json").read_text(encoding="utf-8")
)


def lead(key: str) -> str:
    """The fixed start of a catalogue message (before its first parameter)."""
    text: str = MESSAGES[key]
    return text.split("{", 1)[0]


class QuotaSystem(RegulatorSystem):
    """Broker and central with one replay and one export per hour per user."""

    def _central_config(self, admin: BrokerAdminConfig) -> dict[str, Any]:
        config = super()._central_config(admin)
        config["video_quota"] = {"replays_per_user": 1, "exports_per_hour_per_user": 1}
        return config


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuotaSystem]:
    world = QuotaSystem(tmp_path_factory.mktemp("quota"))
    world.start()
    try:
        world.raise_alert_with_snapshot(camera_jpeg(20))  # the camera is listed
        yield world
    except BaseException:
        print(world.logs())
        raise
    finally:
        world.stop()


def test_replay_page_shows_the_quota_refusals(system: QuotaSystem) -> None:
    now = time.time()
    body = {"site_id": SITE, "camera_id": CAMERA, "start": now - 900, "end": now - 870}
    assert system.api("POST", "/api/v1/video/exports", user="staff-canteen-a", body=body)["id"]
    node = shutil.which("node")
    assert node, "node is not installed"
    options = {
        "base": system.url,
        "username": "staff-canteen-a",
        "password": system.users["staff-canteen-a"],
        "site": SITE,
        "camera": CAMERA,
        "viewersText": lead("err.quota_viewers"),
        "exportsText": lead("err.quota_exports"),
    }
    done = subprocess.run(
        [node, str(HERE / "quota_pages.mjs"), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HERE,
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    assert lines, f"no result from the browser:\n{done.stdout}\n{done.stderr}"
    result = json.loads(lines[-1])
    assert result["ok"], result
    assert lead("err.quota_viewers") in result["replayState"]
    assert lead("err.quota_exports") in result["exportState"]
    assert lead("err.quota_viewers") not in result["firstState"]  # the first replay was taken
    assert result["problems"] == []
