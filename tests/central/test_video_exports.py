"""Clip export through central: signed manifest, `verify-clip` passes, a tampered clip fails."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from central_support import Central, call
from video_support import add_camera, connect_edge, wait_command

from central.cli import main as central_cli
from central.ingest.broker_client import RawMessage
from central.keys import DATABASE, INGEST
from central.video.signing import KEY_FILE
from edge_agent.recording.index import SegmentIndex
from edge_agent.uplink.export import export_clip
from fsv_contract import encode, topics
from fsv_contract.integrity import AnchorLink, AnchorPayload, CameraAnchor
from fsv_contract.video import (
    GENESIS,
    ClipManifest,
    FrameHeader,
    FrameKind,
    Hello,
    control_json,
    segment_link,
)
from testbed.footage import Footage
from tests.edge_agent.uplink.conftest import T0, record_clip

pytestmark = pytest.mark.asyncio


Anchors = Callable[[ClipManifest], list[AnchorLink]]


async def _edge_uploads(
    central: Central, token: str, tmp_path: Path, footage: Footage, anchors: Anchors | None = None
) -> None:
    """What the edge does on `export_clip`: cut the clip from real segments and send it.

    `anchors`: the chain links central received from the box when it sealed the clip's
    segments (none: the site never anchored)."""
    storage = tmp_path / "edge"
    storage.mkdir(parents=True)
    index = SegmentIndex(tmp_path / "edge.db")
    record_clip(storage, index, "cam1", footage.short_h264, T0)
    clip = tmp_path / "clip.mp4"
    manifest = export_clip(index, storage, "demo-canteen-a", "cam1", T0 + 1, T0 + 5, clip)
    index.close()
    if anchors is not None:
        payload = AnchorPayload(
            cameras=[CameraAnchor(camera="cam1", links=anchors(manifest), removed=[])],
            created_at=datetime.now(UTC),
        )
        message = RawMessage(topics.anchor("demo-canteen-a"), encode(payload), time.time())
        central.client.app[INGEST].process([message])
    ws = await connect_edge(central, token)
    await ws.send_str(
        Hello(
            camera="cam1",
            stream="main",
            mode="export",
            codec="h264",
            mime="video/mp4",
            width=0,
            height=0,
        ).model_dump_json()
    )
    data = clip.read_bytes()
    for i in range(0, len(data), 100_000):
        await ws.send_bytes(FrameHeader(FrameKind.FILE).pack(data[i : i + 100_000]))
    await ws.send_str(control_json(manifest))
    await ws.send_str('{"type": "end", "reason": "done"}')
    await ws.close()


async def _ask_export(central: Central, start: float, end: float) -> tuple[int, Any]:
    """An inspector asks for a clip of demo-canteen-a's cam1: the answer's status and body."""
    body = {"site_id": "demo-canteen-a", "camera_id": "cam1", "start": start, "end": end}
    return await call(central, "inspector-a", "POST", "/api/v1/video/exports", json=body)


async def _wait_done(central: Central, export_id: str) -> dict[str, object]:
    async with asyncio.timeout(10):
        while True:
            status, page = await call(central, "inspector-a", "GET", "/api/v1/video/exports")
            job = next(j for j in page["items"] if j["id"] == export_id)
            if job["status"] in ("done", "failed"):
                return dict(job)
            await asyncio.sleep(0.05)


async def test_an_exported_clip_verifies_and_a_tampered_one_fails(
    central: Central,
    footage: Footage,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    central_db_url: str | None,
) -> None:
    add_camera(central)
    status, job = await _ask_export(central, T0 + 1, T0 + 5)
    assert status == 201, job
    command = await wait_command(central, "export_clip")
    assert datetime.fromisoformat(command["args"]["start"]).timestamp() == T0 + 1
    await _edge_uploads(central, command["args"]["token"], tmp_path, footage)
    done = await _wait_done(central, job["id"])
    assert done["status"] == "done", done
    url = "/api/v1/video/exports/file"
    s1, clip = await call(central, "inspector-a", "GET", url, params={"id": job["id"]})
    s2, manifest = await call(
        central, "inspector-a", "GET", url, params={"id": job["id"], "part": "manifest"}
    )
    assert (s1, s2) == (200, 200)
    assert manifest["signature"]["alg"] == "ed25519"
    clip_file, manifest_file = tmp_path / "got.mp4", tmp_path / "got.json"
    clip_file.write_bytes(clip)
    manifest_file.write_text(json.dumps(manifest))
    data_dir = tmp_path / "data"
    assert (data_dir / KEY_FILE).exists()
    database = ["--database", central_db_url] if central_db_url else []
    ok = central_cli(
        ["verify-clip", str(clip_file), str(manifest_file), "--data-dir", str(data_dir), *database]
    )
    assert ok == 0, capsys.readouterr().out
    assert "signature by central checked" in capsys.readouterr().out
    tampered = bytearray(clip)
    tampered[len(tampered) // 2] ^= 0xFF
    clip_file.write_bytes(bytes(tampered))
    assert central_cli(["verify-clip", str(clip_file), str(manifest_file)]) == 1
    assert "was altered" in capsys.readouterr().out
    clip_file.write_bytes(clip)
    manifest["clip_end"] += 10  # a rewritten manifest breaks the signature
    manifest_file.write_text(json.dumps(manifest))
    assert (
        central_cli(
            ["verify-clip", str(clip_file), str(manifest_file), "--data-dir", str(data_dir)]
        )
        == 1
    )
    assert "signature" in capsys.readouterr().out
    status, other = await call(central, "inspector-b", "GET", url, params={"id": job["id"]})
    assert status == 404


async def test_an_export_the_edge_cannot_make_fails_with_its_reason(central: Central) -> None:
    add_camera(central)
    status, job = await _ask_export(central, time.time() - 60, time.time())
    assert status == 201
    token = (await wait_command(central, "export_clip"))["args"]["token"]
    ws = await connect_edge(central, token)
    await ws.send_str('{"type": "end", "reason": "error: camera \'cam1\' recorded nothing"}')
    await ws.close()
    done = await _wait_done(central, job["id"])
    assert done["status"] == "failed" and "recorded nothing" in str(done["error"])
    status, _ = await _ask_export(central, 0, 7200)
    assert status == 400


async def test_recordings_come_from_the_edge_once_then_from_the_cache(central: Central) -> None:
    add_camera(central)
    await central.event("demo-canteen-a", "cam1")
    day = 1_767_225_600.0
    url = "/api/v1/video/recordings/demo-canteen-a/cam1"
    params = {"start": str(day), "end": str(day + 86400)}
    asking = asyncio.create_task(call(central, "inspector-a", "GET", url, params=params))
    command = await wait_command(central, "recordings")
    answer = {"ranges": [{"start": day + 60, "end": day + 3600, "codec": "h264"}], "gaps": []}
    db = central.client.app[DATABASE]
    with db.transaction() as tx:  # what ingest writes when the edge's reply arrives
        tx.execute(
            "update commands set ok = 1, result = ?, replied_at = ? where request_id = ?",
            [json.dumps(answer), time.time(), command["request_id"]],
        )
    status, body = await asking
    assert status == 200 and body["ranges"] == answer["ranges"]
    assert isinstance(body["alerts"], list)
    status, again = await call(central, "inspector-a", "GET", url, params=params)
    assert again["ranges"] == answer["ranges"]
    with db.lock:
        asked = list(db.db.query("select count(*) n from commands where verb = 'recordings'"))
    assert asked[0]["n"] == 1
    status, _ = await call(central, "inspector-b", "GET", url, params=params)
    assert status == 404


def _as_sealed(manifest: ClipManifest) -> list[AnchorLink]:
    """The links of the clip's segments as the box anchored them when it sealed them."""
    return [AnchorLink(**seg.model_dump(exclude={"used"})) for seg in manifest.segments]


def _as_sealed_before_a_rewrite(manifest: ClipManifest) -> list[AnchorLink]:
    """The links the box anchored before it rewrote the first segment and rebuilt its index:
    the manifest it now sends holds together, but its first segment is not the one sealed."""
    links, prev = [], GENESIS
    for i, seg in enumerate(manifest.segments):
        facts = {"prev_chain": prev, **({"sha256": "e" * 64} if i == 0 else {})}
        sealed = seg.model_copy(update=facts)
        link = segment_link(prev, "cam1", sealed)
        links.append(AnchorLink(**{**sealed.model_dump(exclude={"used"}), "chain": link}))
        prev = link
    return links


async def _export_anchored(
    central: Central, tmp_path: Path, footage: Footage, anchors: Anchors
) -> dict[str, object]:
    """An inspector's export of cam1 that the edge makes after anchoring `anchors`; the job
    once it is done or failed."""
    add_camera(central)
    status, job = await _ask_export(central, T0 + 1, T0 + 5)
    assert status == 201, job
    command = await wait_command(central, "export_clip")
    await _edge_uploads(central, command["args"]["token"], tmp_path, footage, anchors=anchors)
    return await _wait_done(central, job["id"])


async def test_central_signs_an_export_of_the_segments_it_anchored(
    central: Central, footage: Footage, tmp_path: Path
) -> None:
    done = await _export_anchored(central, tmp_path, footage, _as_sealed)
    assert done["status"] == "done", done
    assert _findings(central) == []


async def test_central_refuses_to_sign_segments_rewritten_after_they_were_anchored(
    central: Central, footage: Footage, tmp_path: Path
) -> None:
    failed = await _export_anchored(central, tmp_path, footage, _as_sealed_before_a_rewrite)
    assert failed["status"] == "failed", failed
    assert "not those central anchored" in str(failed["error"]), failed
    assert "differs from the link central anchored" in str(failed["error"]), failed
    s1, _ = await call(
        central, "inspector-a", "GET", "/api/v1/video/exports/file", params={"id": failed["id"]}
    )
    assert s1 == 404  # nothing signed, nothing to download
    # The rewritten first segment, and each segment after it whose link follows from it.
    assert _findings(central) == [("export", "differs from the link central anchored")] * 3
    status, cameras = await call(central, "city-monitor", "GET", "/api/v1/integrity/cameras")
    assert status == 200, cameras
    cam1 = next(c for c in cameras["items"] if c["camera_id"] == "cam1")
    assert cam1["findings"] == 3, cam1


def _findings(central: Central) -> list[tuple[str, str]]:
    """(source, problem) of the integrity findings stored for demo-canteen-a's cam1."""
    with central.client.app[DATABASE].read() as conn:
        rows = conn.execute(
            "select source, problem from integrity_findings where site = ? and camera = ?",
            ["demo-canteen-a", "cam1"],
        ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]
