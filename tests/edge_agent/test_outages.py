"""Outages measured to the frame with the footage's burned-in counter: kill -9, camera restarts."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import yaml
from recording_helpers import make_config, wait_for

from edge_agent.credentials import CredentialStore
from edge_agent.recording.index import SegmentIndex
from edge_agent.recording.recorder import CameraRecorder
from edge_agent.recording.segment_writer import FRAGMENT_US
from testbed.footage import Footage
from testbed.outage_check import holes, kept_live, kill_losses, loop_frames
from testbed.rtsp import RtspServer

pytestmark = pytest.mark.slow
RtspServerFactory = Callable[..., RtspServer]
ROOT = Path(__file__).resolve().parents[2]
GOP_S = 2.0
# Rounds of each outage here; bench/outages.py repeats them (--kills, --restarts) for the
# published figures.
KILLS = int(os.environ.get("FSV_OUTAGE_KILLS", "2"))
FLAPS = int(os.environ.get("FSV_OUTAGE_FLAPS", "2"))


def start_agent(config_file: Path, log_file: Path) -> "subprocess.Popen[bytes]":
    """`edge-agent run` of this checkout in its own process group."""
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", "-c", str(config_file)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip


def kill_loop(
    config_file: Path, index_db: Path, log: Path, kills: int, rng: random.Random
) -> list[float]:
    """Start the agent, let it record a random while, kill -9 it; `kills` times, then stop.

    Returns when each kill was sent.
    """
    index = SegmentIndex(index_db)
    killed_at: list[float] = []
    try:
        for _ in range(kills):
            agent = start_agent(config_file, log)
            try:
                started = time.time()
                wait_for(partial(recorded_since, index, started), 60, "video after a restart")
                time.sleep(rng.uniform(0.5, 4.0))  # anywhere in a segment, mid-fragment too
            finally:
                killed_at.append(time.time())
                agent.send_signal(signal.SIGKILL)
                agent.wait(10)
        agent = start_agent(config_file, log)
        try:
            started = time.time()
            wait_for(partial(recorded_since, index, started), 60, "video after the last restart")
        finally:
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(30) == 0
    finally:
        index.close()
    return killed_at


def recorded_since(index: SegmentIndex, since: float) -> bool:
    """Whether a segment that began after `since` is indexed."""
    return any(s.start >= since for s in index.segments("cam1", start=since))


def test_every_kill_9_is_a_gap_row_as_long_as_the_frames_lost(
    footage: Footage, rtsp_server_factory: RtspServerFactory, tmp_path: Path
) -> None:
    server = rtsp_server_factory({"cam1": footage.main_h264})
    config = make_config(tmp_path, {"cam1": server.url("cam1")})
    config_file = tmp_path / "edge.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    index_db = config.state_dir / "index.db"
    SegmentIndex(index_db).close()
    kills = KILLS
    with kept_live(server.url("cam1")):
        killed_at = kill_loop(config_file, index_db, tmp_path / "agent.log", kills,
                              random.Random(11))  # fmt: skip

    found = holes(index_db, config.storage.path, "cam1", loop_frames(footage.main_h264))
    log = (tmp_path / "agent.log").read_text()
    assert len(found) == kills, (found, log[-3000:])
    for hole in found:
        assert hole.gap_rows == ("agent not running",), hole
        assert 0 < hole.true_s <= 15.0, hole  # restart, reconnect and the keyframe wait
        assert abs(hole.error_s) <= 0.1, hole  # the index's hole is the real one
    # Beyond the seconds the agent was not running, a kill costs the fragment under way
    # (not the GOP) and, once the recorder connects again, the wait for a keyframe.
    parts = kill_losses(index_db, found, killed_at, log, "cam1")
    assert len(parts) == kills, (parts, log[-3000:])
    for part in parts:
        assert -0.1 < part.tail_s <= FRAGMENT_US / 1e6 + 0.3, part
        assert 0 < part.after_s <= GOP_S + 0.5, part  # the RTSP handshake, then the keyframe
        assert 0 <= part.keyframe_wait_s < GOP_S, part  # the next keyframe, within one GOP
        assert 0 < part.handshake_s <= 0.5, part  # connect to playing: round trips, no probing
    index = SegmentIndex(index_db)
    assert index.verify_chain("cam1", config.storage.path) == []
    index.close()


def test_a_flapping_camera_comes_back_within_5_s_every_time(
    footage: Footage, rtsp_server_factory: RtspServerFactory, tmp_path: Path
) -> None:
    """Default back-off (1 s doubling to 60 s, 10 restarts in 5 min): no long pause."""
    server = rtsp_server_factory({"cam1": footage.main_h264})
    config = make_config(tmp_path, {"cam1": server.url("cam1")}, backoff_initial_s=1.0,
                         backoff_max_s=60.0)  # fmt: skip
    index = SegmentIndex(config.state_dir / "index.db")
    recorder = CameraRecorder(config.cameras[0], config, index, CredentialStore(environ={}))
    recorder.start()
    back_after: list[float] = []
    try:
        wait_for(lambda: recorder.status().state == "online", 20, "online")
        for _ in range(FLAPS):
            time.sleep(12.0)  # a healthy stretch of recording
            server.stop()
            wait_for(lambda: recorder.status().state == "offline", 15, "offline")
            time.sleep(5.0)  # the camera reboots: four failed connects or so
            server.start()
            back = time.time()
            wait_for(lambda: recorder.status().state == "online", 30, "online again")
            back_after.append(recorder.status().since - back)
        time.sleep(3)
    finally:
        recorder.stop()
    assert max(back_after) <= 5.0 + GOP_S, back_after
    gaps = [g for g in index.gaps("cam1") if g.reason != "agent stopped"]
    assert len(gaps) == FLAPS and all(g.end is not None for g in gaps)
    assert index.verify_chain("cam1", config.storage.path) == []
    index.close()


def test_free_space_stays_above_the_watermark_and_a_full_disk_is_survived(
    rtsp_server: RtspServer, tmp_path: Path
) -> None:
    """Two cameras on a 48 MB disk (a private tmpfs), then another program fills it.

    The cleaner makes room within a second or two of the fill: 12 s full is ample.
    """
    cams = {"cam1": rtsp_server.url("cam1"), "cam2": rtsp_server.url("cam2")}
    storage = {
        "hard_min_free_bytes": 8_000_000,
        "hard_min_free_percent": 0,
        "cleanup_interval_s": 10,
    }
    config = make_config(tmp_path, cams, storage=storage)
    config_file = tmp_path / "edge.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    run = subprocess.run(
        ["unshare", "-Urm", sys.executable, "-m", "testbed.disk_full", str(config_file),
         str(48 << 20), "45", "12"],
        capture_output=True, text=True, cwd=ROOT, timeout=240, check=False,
    )  # fmt: skip
    log = config_file.with_suffix(".log").read_text()
    assert run.returncode == 0, run.stderr[-3000:] + log[-3000:]
    result = json.loads(run.stdout)
    assert result["min_free_bytes"] >= result["watermark_bytes"], result
    assert result["enospc_fill_bytes"] > 0  # the disk really was full
    assert result["agent_exit"] == 0
    assert result["verify_exit"] == 0, result["verify"]
    facts = result["index"]
    assert facts["segments"] >= 4 and facts["evicted"] > 0 and facts["min_duration"] > 0
    # Filled by another program, the disk got room again from the cleaner, woken at once.
    assert result["free_after_full_bytes"] >= result["watermark_bytes"]
    assert "evicting" in log
