"""The anchor sender on a real index and outbox: every link once, in chain order, crash-safe."""

from __future__ import annotations

import json
import time
from pathlib import Path

from edge_agent.integrity.anchor import MAX_LINKS_PER_MESSAGE, AnchorSender
from edge_agent.integrity.audit import audit_handler
from edge_agent.mqtt.outbox import Outbox
from edge_agent.recording.index import GENESIS, SegmentIndex, SegmentInfo
from fsv_common.digest import file_sha256
from fsv_contract import decode
from fsv_contract.integrity import AnchorPayload, AuditResult
from fsv_contract.video import ManifestSegment, segment_link

SITE = "site-a"


def _add(index: SegmentIndex, storage: Path, camera: str, n: int) -> SegmentInfo:
    rel = f"{camera}/2026-01-01/00/{n // 60:02d}.{n % 60:02d}.mp4"
    path = storage / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"segment {camera} {n}".encode() * 10)
    info = SegmentInfo(
        camera, rel, 1e9 + n, 1e9 + n + 1, path.stat().st_size, "h264", 640, 360, None,
        file_sha256(path),
    )  # fmt: skip
    index.add_segment(info)
    return info


def _sent(outbox: Outbox) -> list[AnchorPayload]:
    out = []
    for m in outbox.pending(limit=10_000):
        payload = decode(m.topic, m.payload).payload
        assert isinstance(payload, AnchorPayload)
        out.append(payload)
    return out


def _links(payloads: list[AnchorPayload], camera: str) -> list[str]:
    return [lk.path for p in payloads for c in p.cameras if c.camera == camera for lk in c.links]


def test_links_go_out_once_in_order_and_follow_each_other(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "index.db")
    outbox = Outbox(tmp_path / "outbox.db", SITE)
    sender = AnchorSender(index, outbox, {"cam1": 30})
    infos = [_add(index, tmp_path, "cam1", n) for n in range(5)]
    _add(index, tmp_path, "cam2", 0)
    assert sender.run_once() == 6
    assert sender.run_once() == 0  # nothing new: no message
    infos.append(_add(index, tmp_path, "cam1", 5))
    sender.run_once()
    sent = _sent(outbox)
    assert len(sent) == 2
    assert _links(sent, "cam1") == [i.path for i in infos]
    links = [lk for p in sent for c in p.cameras if c.camera == "cam1" for lk in c.links]
    assert links[0].prev_chain == GENESIS
    for prev, link in zip(links, links[1:], strict=False):
        assert link.prev_chain == prev.chain  # central can check continuity
    for link in links:  # and every link against its facts, as the edge index computed it
        seg = ManifestSegment(**link.model_dump())
        assert segment_link(link.prev_chain, "cam1", seg) == link.chain
    assert sent[0].cameras[0].retention_days == 30


def test_tombstones_follow_and_the_cursor_survives_a_restart(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "index.db")
    outbox = Outbox(tmp_path / "outbox.db", SITE)
    for n in range(3):
        _add(index, tmp_path, "cam1", n)
    AnchorSender(index, outbox, {}).run_once()
    first = index.segments_by_id("cam1")[0]
    (tmp_path / first.path).unlink()
    index.delete_segments([first.id], reason="retention")
    outbox.close()
    outbox = Outbox(tmp_path / "outbox.db", SITE)  # the agent restarted
    AnchorSender(index, outbox, {}).run_once()
    sent = _sent(outbox)
    assert len(_links(sent, "cam1")) == 3  # nothing sent twice
    removed = [t for p in sent for c in p.cameras for t in c.removed]
    assert [(t.path, t.reason, t.chain) for t in removed] == [
        (first.path, "retention", first.chain)
    ]


def test_a_rebuilt_index_is_sent_again_from_its_start(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", SITE)
    index = SegmentIndex(tmp_path / "index.db")
    for n in range(3):
        _add(index, tmp_path, "cam1", n)
    AnchorSender(index, outbox, {}).run_once()
    outbox.ack(m.id for m in outbox.pending())
    index.close()
    fresh = SegmentIndex(tmp_path / "fresh.db")  # new chain: a rewritten second segment
    for n in range(3):
        _add(fresh, tmp_path, "cam1", n + (10 if n == 1 else 0))
    AnchorSender(fresh, outbox, {}).run_once()
    links = [lk for p in _sent(outbox) for c in p.cameras for lk in c.links]
    assert len(links) == 3 and links[0].prev_chain == GENESIS


def test_a_long_backlog_is_split_under_the_payload_limit(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "index.db")
    outbox = Outbox(tmp_path / "outbox.db", SITE)
    with index.reading() as db, db.conn:  # a day of 1-minute segments, fast
        for n in range(1500):
            prev = "0" * 64 if n == 0 else f"{n - 1:064x}"
            db.execute(
                'insert into segments (camera, path, start, "end", duration, bytes, codec, '
                "width, height, audio_codec, sha256, prev_chain, chain, repaired, indexed_at) "
                "values ('cam1', ?, ?, ?, 60, 1, 'h264', 1, 1, null, ?, ?, ?, 0, ?)",
                [f"cam1/2026-01-01/{n // 60:02d}/{n % 60:02d}.00.mp4", n * 60.0, n * 60.0 + 60,
                 "a" * 64, prev, f"{n:064x}", time.time()],
            )  # fmt: skip
    sender = AnchorSender(index, outbox, {})
    sender.start()
    sender.stop()
    messages = outbox.pending(limit=100)
    assert sender.sent_links == 1500 and len(messages) == 3
    assert max(len(m.payload) for m in messages) < 256 * 1024
    assert all(len(json.loads(m.payload)["cameras"][0]["links"]) <= MAX_LINKS_PER_MESSAGE
               for m in messages)  # fmt: skip


def test_audit_hashes_the_files_on_disk(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "index.db")
    infos = [_add(index, tmp_path, "cam1", n) for n in range(4)]
    (tmp_path / infos[1].path).write_bytes(b"rewritten")
    (tmp_path / infos[2].path).unlink()
    gone = index.segments_by_id("cam1")[3]
    (tmp_path / gone.path).unlink()
    index.delete_segments([gone.id], reason="retention")
    handle = audit_handler(index, tmp_path)
    samples = [{"camera": "cam1", "path": i.path} for i in infos]
    samples.append({"camera": "cam2", "path": infos[0].path})  # not that camera's file
    proofs = AuditResult.model_validate(handle({"samples": samples})).proofs
    assert [p.state for p in proofs] == ["present", "present", "missing", "removed", "missing"]
    assert proofs[0].sha256 == infos[0].sha256 and proofs[0].indexed
    assert proofs[1].sha256 != infos[1].sha256
    assert proofs[3].removed_reason == "retention"
    try:
        handle({"samples": [{"camera": "cam1", "path": "cam1/../../etc/passwd"}]})
    except ValueError as e:
        assert "bad audit arguments" in str(e)
    else:
        raise AssertionError("a path leaving the storage was accepted")
