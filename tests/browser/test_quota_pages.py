"""Video quotas in the replay page: a refused replay and a refused export say why, in Chinese."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from regulator_system import RegulatorSystem
from video_system import CAMERA, SITE, running
from walks import Walk

from central.config import BrokerAdminConfig
from testbed.footage import camera_jpeg

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
        config["video_quota"].update(replays_per_user=1, exports_per_hour_per_user=1)
        # No edge answers here: the replays' questions for recordings can only time out.
        config["video_quota"]["recordings_answer_s"] = 1.0
        return config


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuotaSystem]:
    with running(QuotaSystem(tmp_path_factory.mktemp("quota"))) as world:
        world.raise_alert_with_snapshot(camera_jpeg(20))  # the camera is listed
        yield world


def test_replay_page_shows_the_quota_refusals(system: QuotaSystem, walk: Walk) -> None:
    now = time.time()
    body = {"site_id": SITE, "camera_id": CAMERA, "start": now - 900, "end": now - 870}
    assert system.api("POST", "/api/v1/video/exports", user="staff-canteen-a", body=body)["id"]
    options = {
        "base": system.url,
        "username": "staff-canteen-a",
        "password": system.users["staff-canteen-a"],
        "site": SITE,
        "camera": CAMERA,
        "viewersText": lead("err.quota_viewers"),
        "exportsText": lead("err.quota_exports"),
    }
    result = walk("quota_pages.mjs", options, timeout=300)
    assert lead("err.quota_viewers") in result["replayState"]
    assert lead("err.quota_exports") in result["exportState"]
    assert lead("err.quota_viewers") not in result["firstState"]  # the first replay was taken
    assert result["problems"] == []
