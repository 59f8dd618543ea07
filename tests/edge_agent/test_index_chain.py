"""The per-camera hash chain survives the agent's own deletions and exposes others'."""

from __future__ import annotations

from pathlib import Path

from edge_agent.recording.index import GENESIS, SegmentIndex, SegmentInfo, chain_hash
from fsv_common.digest import file_sha256


def _info(storage: Path, camera: str, minute: int) -> SegmentInfo:
    """A real segment-named file of `camera` at `minute`, and its facts."""
    rel = f"{camera}/2026-01-01/00/{minute:02d}.00.mp4"
    path = storage / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"segment {camera} {minute}".encode())
    return SegmentInfo(
        camera,
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


def _add(index: SegmentIndex, storage: Path, minute: int) -> int:
    return index.add_segment(_info(storage, "cam1", minute)).id


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


def _evict(index: SegmentIndex, storage: Path, ids: list[int]) -> None:
    """What the retention cleaner does: the files first, then the rows (tombstones kept)."""
    for seg in index.segments(camera="cam1") + index.segments(camera="cam2"):
        if seg.id in ids:
            (storage / seg.path).unlink()
    index.delete_segments(ids, reason="retention")


def test_a_segment_after_every_one_was_evicted_links_to_the_newest_tombstone(
    tmp_path: Path,
) -> None:
    """A full disk can evict all a camera has; the next segment still follows the chain."""
    index = SegmentIndex(tmp_path / "index.db")
    ids = [_add(index, tmp_path, m) for m in range(3)]
    _evict(index, tmp_path, ids)
    new = index.add_segment(_info(tmp_path, "cam1", 3))
    newest_gone = index.removed_segments("cam1")[-1]
    assert new.id > max(ids)  # never the id of a tombstone
    assert new.prev_chain == newest_gone["chain"] and new.prev_chain != GENESIS
    assert index.verify_chain("cam1", tmp_path) == []
    # Evicting the newest again, and recording again, keeps it so.
    _evict(index, tmp_path, [new.id])
    later = index.add_segment(_info(tmp_path, "cam1", 4))
    assert later.prev_chain == new.chain
    assert index.verify_chain("cam1", tmp_path) == []
    assert [t["id"] for t in index.removed_segments("cam1")] == [*ids, new.id]


def test_an_id_freed_by_another_cameras_eviction_is_not_reused(tmp_path: Path) -> None:
    """The newest row of all (cam2's) evicted: cam1's next segment must not take its id,
    or evicting that one too would overwrite cam2's tombstone and break cam2's chain."""
    index = SegmentIndex(tmp_path / "index.db")
    _add(index, tmp_path, 0)
    cam2 = [index.add_segment(_info(tmp_path, "cam2", m)).id for m in range(2)]
    _evict(index, tmp_path, [cam2[-1]])
    cam1 = index.add_segment(_info(tmp_path, "cam1", 1))
    assert cam1.id > cam2[-1]
    _evict(index, tmp_path, [cam1.id])
    assert [t["id"] for t in index.removed_segments("cam2")] == [cam2[-1]]
    index.add_segment(_info(tmp_path, "cam2", 2))
    assert index.verify_chain("cam1", tmp_path) == []
    assert index.verify_chain("cam2", tmp_path) == []


def test_a_tombstone_removed_behind_the_agents_back_still_breaks_the_chain(
    tmp_path: Path,
) -> None:
    index = SegmentIndex(tmp_path / "index.db")
    ids = [_add(index, tmp_path, m) for m in range(3)]
    _evict(index, tmp_path, ids)
    new = index.add_segment(_info(tmp_path, "cam1", 3))
    index.db.execute("delete from removed_segments where id = ?", [ids[-1]])
    assert index.verify_chain("cam1", tmp_path) == [
        f"{new.path}: does not link to the previous segment"
    ]


def test_an_older_index_with_a_reused_id_chains_on_from_the_live_row(tmp_path: Path) -> None:
    """Indexes written before ids stopped being reused may hold a tombstone and a live row
    with the same id; the live row was chained after it, so the next link follows it."""
    index = SegmentIndex(tmp_path / "index.db")
    first = index.add_segment(_info(tmp_path, "cam1", 0))
    second = index.add_segment(_info(tmp_path, "cam1", 1))
    _evict(index, tmp_path, [second.id])
    reused = _info(tmp_path, "cam1", 2)  # as the old index inserted it: id reused, link skipped
    old_link = chain_hash(first.chain, reused)
    with index.reading() as db:
        db.execute(
            "insert into segments (id, camera, path, start, \"end\", duration, bytes, codec, "
            "width, height, audio_codec, sha256, prev_chain, chain, repaired, indexed_at) "
            "values (?, 'cam1', ?, ?, ?, 60, ?, 'h264', 1920, 1080, null, ?, ?, ?, 0, 0)",
            [second.id, reused.path, reused.start, reused.end, reused.bytes, reused.sha256,
             first.chain, old_link],
        )  # fmt: skip
        db.conn.commit()
    new = index.add_segment(_info(tmp_path, "cam1", 3))
    assert new.id == second.id + 1 and new.prev_chain == old_link
