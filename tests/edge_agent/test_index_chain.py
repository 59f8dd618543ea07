"""The per-camera hash chain survives the agent's own deletions and exposes others'."""

from __future__ import annotations

from pathlib import Path

from edge_agent.recording.index import GENESIS, SegmentIndex, SegmentInfo
from fsv_common.digest import file_sha256


def _add(index: SegmentIndex, storage: Path, minute: int) -> int:
    rel = f"cam1/2026-01-01/00/{minute:02d}.00.mp4"
    path = storage / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"segment {minute}".encode())
    info = SegmentInfo(
        "cam1",
        rel,
        60.0 * minute,
        60.0 * minute + 60,
        path.stat().st_size,
        "h264",
        1920,
        1080,
        None,
        file_sha256(path),
    )
    return index.add_segment(info).id


def test_chain_links_and_detects_changed_file(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "index.db")
    ids = [_add(index, tmp_path, m) for m in range(3)]
    segs = index.segments_by_id("cam1")
    assert segs[0].prev_chain == GENESIS
    assert [s.prev_chain for s in segs[1:]] == [s.chain for s in segs[:-1]]
    assert index.verify_chain("cam1", tmp_path) == []
    (tmp_path / segs[1].path).write_bytes(b"edited")
    assert index.verify_chain("cam1", tmp_path) == [f"{segs[1].path}: file content changed"]
    assert len(ids) == 3


def test_deletions_by_the_agent_keep_the_chain_verifiable(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "index.db")
    ids = [_add(index, tmp_path, m) for m in range(4)]
    for seg in index.segments(camera="cam1")[:2]:
        (tmp_path / seg.path).unlink()
    index.delete_segments(ids[:2], reason="retention")
    assert index.verify_chain("cam1", tmp_path) == []
    tombstones = index.removed_segments("cam1")
    assert [t["id"] for t in tombstones] == ids[:2]
    assert {t["reason"] for t in tombstones} == {"retention"}


def test_a_row_removed_behind_the_agents_back_breaks_the_chain(tmp_path: Path) -> None:
    index = SegmentIndex(tmp_path / "index.db")
    ids = [_add(index, tmp_path, m) for m in range(3)]
    index.db.execute("delete from segments where id = ?", [ids[1]])
    problems = index.verify_chain("cam1", tmp_path)
    assert problems == ["cam1/2026-01-01/00/02.00.mp4: does not link to the previous segment"]


def test_index_reopens_with_migrations_applied_once(tmp_path: Path) -> None:
    SegmentIndex(tmp_path / "index.db").close()
    index = SegmentIndex(tmp_path / "index.db")
    _add(index, tmp_path, 0)
    assert index.verify_chain("cam1", tmp_path) == []
