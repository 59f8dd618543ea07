"""Tampering with footage on the box is caught at central: real broker, real segment files.

The edge's real MQTT side and anchor sender run against the real central app through a real
Mosquitto. Each tamper case (file deleted, truncated, rewritten, index rows deleted, index
rebuilt from scratch) must raise a `footage_tampered` alert in the inspector's inbox at the
next audit or anchor check; a clean box and a box offline for a while raise none.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from central_support import Central, call, make_config
from integrity_support import SITE, Edge, edge_config, record_segments, report_figures, wait_for

from central.api.common import SERVICES
from central.app import create_app
from central.cli import main as central_cli
from central.keys import CONFIG, DATABASE, INTEGRITY
from central.regulation.seed import seed_demo
from edge_agent.recording.index import SegmentIndex
from edge_agent.recording.repair import scan_and_repair
from testbed.errors import BrokerError
from testbed.footage import Footage

pytestmark = pytest.mark.asyncio
DAY = 86400.0


@pytest_asyncio.fixture
async def rig(
    aiohttp_client: Any,
    tmp_path: Path,
    mosquitto_broker_factory: Any,
    central_db_url: str | None,
) -> AsyncIterator[tuple[Central, Any]]:
    broker = mosquitto_broker_factory()
    (tmp_path / "central").mkdir()
    config = make_config(
        tmp_path / "central",
        broker.port,
        database=central_db_url,
        integrity={"poll_s": 0.2, "audit_interval_s": 86400},
    )
    client = await aiohttp_client(create_app(config))
    seed = await asyncio.to_thread(seed_demo, client.app[SERVICES])
    yield Central(client, seed), broker


def _db_rows(central: Central, sql: str, args: list[Any] | None = None) -> list[tuple[Any, ...]]:
    db = central.client.app[DATABASE]
    with db.lock:
        return list(db.db.execute(sql, args or []).fetchall())


def _anchored(central: Central) -> int:
    return int(_db_rows(central, "select count(*) from anchored_segments")[0][0])


def _findings(central: Central) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in _db_rows(central, "select path, problem from integrity_findings")]


async def _audit(central: Central, samples: int = 50) -> dict[str, Any]:
    audits = central.client.app[INTEGRITY]
    audit_id = await asyncio.to_thread(audits.request, SITE, None, samples, "test")

    def finished() -> dict[str, Any] | None:
        row = audits.get(audit_id)
        return row if row and row["state"] in ("done", "unanswered", "failed") else None

    row = await asyncio.to_thread(wait_for, finished, 60, "the audit")
    assert row["state"] == "done", row
    return dict(row)


def _restart(broker: Any) -> None:
    """Start the broker again on its port (the old socket may linger a moment)."""
    for _ in range(20):
        try:
            broker.start()
            return
        except BrokerError:
            time.sleep(1.0)
    broker.start()


async def _inbox(central: Central) -> list[dict[str, Any]]:
    status, page = await call(
        central, "inspector-a", "GET", "/api/v1/alerts", params={"kind": "footage_tampered"}
    )
    assert status == 200, page
    return list(page["items"])


async def test_each_tamper_case_is_detected_and_reaches_the_inspector(
    rig: tuple[Central, Any], footage: Footage, tmp_path: Path
) -> None:
    central, _broker = rig
    config = edge_config(tmp_path, _broker.port)
    storage = config.storage.path
    index = SegmentIndex(config.state_dir / "index.db")
    t0 = time.time() - 3 * DAY
    segments = record_segments(index, storage, footage.short_h264, t0, 8)
    edge = Edge(config, index)
    await asyncio.to_thread(edge.start)
    try:
        await asyncio.to_thread(wait_for, lambda: _anchored(central) == 8, 60, "8 anchors")
        clean = await _audit(central)
        assert (clean["checked"], clean["tampered"]) == (8, 0)
        assert _findings(central) == [] and await _inbox(central) == []

        # 1-3: the file deleted, truncated, rewritten with other bytes of the same size.
        (storage / segments[1].path).unlink()
        with (storage / segments[2].path).open("r+b") as f:
            f.truncate(segments[2].bytes // 2)
        target = storage / segments[3].path
        data = bytearray(target.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
        target.write_bytes(bytes(data))
        # 4: index rows deleted behind the agent's back (no tombstone).
        with index.reading() as db, db.conn:
            db.execute("delete from segments where id = ?", [segments[4].id])
        found = await _audit(central)
        problems = dict(_findings(central))
        cases = {"deleted": segments[1], "truncated": segments[2], "rewritten": segments[3],
                 "index_rows_deleted": segments[4]}  # fmt: skip
        detected = {case: seg.path in problems for case, seg in cases.items()}
        false_alarms = len(set(problems) - {s.path for s in cases.values()})
        assert "missing" in problems[segments[1].path]
        assert "differs" in problems[segments[2].path]
        assert "differs" in problems[segments[3].path]
        assert "no longer in the box's index" in problems[segments[4].path]
        assert set(problems) == {s.path for s in segments[1:5]}  # no false alarm

        # 5: the index rebuilt from scratch (the chain starts over): the anchor check sees it.
        await asyncio.to_thread(edge.stop)
        index.close()
        (config.state_dir / "index.db").unlink()
        for extra in ("index.db-wal", "index.db-shm"):
            (config.state_dir / extra).unlink(missing_ok=True)
        index = SegmentIndex(config.state_dir / "index.db")
        await asyncio.to_thread(scan_and_repair, index, storage)
        edge = Edge(config, index)
        await asyncio.to_thread(edge.start)

        # The rebuilt index is anchored again in batches. Its first link may match the old one
        # exactly (a segment's start and length read back from the file can equal the indexed
        # ones), so the rebuild shows from the first changed link on: the untouched segments
        # after the deleted one come back under other chain links. Wait for the last of them.
        def rebuilt() -> set[str]:
            return {p for p, why in _findings(central) if "another chain link" in why}

        untouched = {s.path for s in segments[5:]}
        try:
            await asyncio.to_thread(
                wait_for, lambda: untouched <= rebuilt(), 60, "the rebuilt chain's findings"
            )
        except AssertionError:
            pass
        detected["index_rebuilt"] = untouched <= rebuilt()
        report_figures(
            tamper_cases=len(detected), detected=sum(detected.values()),
            detected_by_case=detected, false_alarms=false_alarms,
        )  # fmt: skip
        assert found["tampered"] == 4, found
        assert all(detected.values()), detected

        audited = _db_rows(central, "select id from audit_log where action = 'footage_tampered'")
        raised = _db_rows(central, "select id from events where kind = 'footage_tampered'")
        assert len(audited) == len(raised) >= 2  # one per check that found something
        for _ in range(100):  # the alert feed follows ingest
            inbox = await _inbox(central)
            if len(inbox) == len(raised):
                break
            await asyncio.sleep(0.2)
        assert len(inbox) == len(raised) and all(a["severity"] == "critical" for a in inbox)
        assert {a["camera_id"] for a in inbox} == {"cam1"}
        status, cams = await call(central, "inspector-a", "GET", "/api/v1/integrity/cameras")
        assert status == 200 and cams["items"][0]["audited"] >= 8
        assert cams["items"][0]["last_audit_result"] == "tampered"
        status, other = await call(central, "inspector-b", "GET", "/api/v1/integrity/cameras")
        assert status == 200 and other["items"] == []  # scoped like alerts: not their site
    finally:
        await asyncio.to_thread(edge.stop)
        index.close()


async def test_a_box_offline_anchors_its_backlog_without_alarm(
    rig: tuple[Central, Any],
    footage: Footage,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    central, broker = rig
    config = edge_config(tmp_path, broker.port)
    index = SegmentIndex(config.state_dir / "index.db")
    t0 = time.time() - 1 * DAY
    record_segments(index, config.storage.path, footage.short_h264, t0, 3)
    edge = Edge(config, index)
    await asyncio.to_thread(edge.start)
    try:
        await asyncio.to_thread(wait_for, lambda: _anchored(central) == 3, 60, "3 anchors")
        await asyncio.to_thread(broker.stop)  # the box's uplink is gone
        record_segments(index, config.storage.path, footage.short_h264, t0 + 6, 12)
        await asyncio.to_thread(
            wait_for, lambda: edge.anchor.sent_links == 15, 30, "backlog in the outbox"
        )
        assert edge.mqtt.outbox.count() >= 1
        await asyncio.to_thread(_restart, broker)
        await asyncio.to_thread(wait_for, lambda: _anchored(central) == 15, 90, "the backlog")
        audit = await _audit(central)
        report_figures(offline_false_alarms=len(_findings(central)))
        assert (audit["checked"], audit["tampered"]) == (15, 0)
        assert _findings(central) == [] and await _inbox(central) == []
        # The operator's command runs one through the running server, one camera, 2 samples.
        cfg = tmp_path / "central.yaml"
        cfg.write_text(yaml.safe_dump(central.client.app[CONFIG].model_dump(mode="json")))
        argv = ["audit", SITE, "-c", str(cfg), "--camera", "cam1", "--samples", "2"]
        assert await asyncio.to_thread(central_cli, [*argv, "--wait", "60"]) == 0
        out = capsys.readouterr().out
        assert "2 segment(s) proved, 0 problem(s)" in out and out.count(": ok") == 2
    finally:
        await asyncio.to_thread(edge.stop)
        index.close()
