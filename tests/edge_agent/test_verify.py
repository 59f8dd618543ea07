"""`edge-agent verify` on real segment files: every kind of tampering is one reported line."""

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from recording_helpers import copy_clip, make_config

from edge_agent.cli import main
from edge_agent.config import EdgeConfig
from edge_agent.recording.index import Segment, SegmentIndex
from edge_agent.retention.cleaner import RetentionCleaner
from testbed.footage import Footage

T0 = 1_764_547_200.0  # 2025-12-01T00:00:00Z


@pytest.fixture
def site(footage: Footage, tmp_path: Path) -> tuple[EdgeConfig, Path, list[Segment]]:
    """Four indexed 2 s segments of cam1 and one of cam2, and the config file naming them."""
    config = make_config(tmp_path, {"cam1": "rtsp://127.0.0.1/cam1", "cam2": "rtsp://127.0.0.1/c2"})
    storage = config.storage.path
    index = SegmentIndex(config.state_dir / "index.db")
    segments = [
        index.add_segment(copy_clip(footage.short_h264, storage, "cam1", T0 + 2 * i, 2.0).seal())
        for i in range(4)
    ]
    index.add_segment(copy_clip(footage.short_h264, storage, "cam2", T0, 2.0).seal())
    index.close()
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    return config, path, segments


def verify(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["verify", "-c", str(path), *args])
    return code, capsys.readouterr().out.splitlines()


def test_intact_footage_verifies(
    site: tuple[EdgeConfig, Path, list[Segment]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, path, _ = site
    code, lines = verify(path, capsys)
    assert code == 0
    assert lines == [lines[-1]] and lines[-1].startswith("verified 5 segment(s)")
    assert lines[-1].endswith(": OK")


def test_deleted_truncated_and_rewritten_files_are_each_reported(
    site: tuple[EdgeConfig, Path, list[Segment]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, path, segs = site
    storage = config.storage.path
    (storage / segs[0].path).unlink()
    with (storage / segs[1].path).open("r+b") as f:
        f.truncate(segs[1].bytes // 2)
    data = bytearray((storage / segs[2].path).read_bytes())
    data[-100] ^= 0xFF  # same size, other bytes
    (storage / segs[2].path).write_bytes(bytes(data))
    code, lines = verify(path, capsys)
    assert code == 1
    problems = lines[:-1]
    assert len(problems) == 3, lines
    assert problems[0].startswith("cam1 2025-12-01T00:00:00Z ") and problems[0].endswith(
        f"{segs[0].path}: file missing"
    )
    assert problems[1].endswith(
        f"{segs[1].path}: size {segs[1].bytes // 2} bytes, indexed {segs[1].bytes} bytes"
    )
    assert f"{segs[2].path}: content changed" in problems[2]
    assert lines[-1].endswith("3 problem(s)")
    # Restricted to one camera and a time range, only what lies inside is rehashed.
    code, lines = verify(
        path,
        capsys,
        "--camera",
        "cam1",
        "--from",
        "2025-12-01T00:00:03Z",
        "--to",
        "2025-12-01T00:00:05Z",
    )
    assert code == 1 and len(lines) == 3 and "size" in lines[0] and "content changed" in lines[1]
    code, lines = verify(path, capsys, "--camera", "cam2")
    assert code == 0 and lines[-1].startswith("verified 1 segment(s)")


def test_index_rows_removed_or_edited_break_the_chain(
    site: tuple[EdgeConfig, Path, list[Segment]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, path, segs = site
    index = SegmentIndex(config.state_dir / "index.db")
    with index.reading() as db:
        db.execute("delete from segments where id = ?", [segs[1].id])  # no tombstone
        db.execute('update segments set "end" = "end" + 5 where id = ?', [segs[3].id])
        db.conn.commit()
    index.close()
    (config.storage.path / segs[1].path).unlink()  # and the file, as a cover-up would
    code, lines = verify(path, capsys)
    assert code == 1
    assert lines[:-1] == [
        f"cam1 2025-12-01T00:00:04Z {segs[2].path}: does not link to the segment chained before it",
        f"cam1 2025-12-01T00:00:06Z {segs[3].path}: index row changed "
        "(chain hash does not match its facts)",
    ]


class _Usage(NamedTuple):
    total: int
    used: int
    free: int


def _full_disk(path: Path) -> _Usage:
    """A disk another program filled to ENOSPC: the cleaner evicts all it may."""
    return _Usage(1 << 30, 1 << 30, 0)


def test_recording_on_after_a_full_disk_evicted_every_segment_verifies(
    site: tuple[EdgeConfig, Path, list[Segment]],
    footage: Footage,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every segment of both cameras evicted (cam2's was the newest row of all), then the
    recorders go on: the new segments follow the tombstones and `verify` finds no break."""
    config, path, segs = site
    index = SegmentIndex(config.state_dir / "index.db")
    cleaner = RetentionCleaner(config, index, disk_usage=_full_disk)
    try:
        result = cleaner.run_once(now=T0 + 60)
    finally:
        cleaner.stop()
    assert len(result.evicted) == 5 and index.segments() == []
    storage = config.storage.path
    after = [
        index.add_segment(copy_clip(footage.short_h264, storage, cam, T0 + 10, 2.0).seal())
        for cam in ("cam1", "cam2")
    ]
    tombstones = index.removed_segments()
    index.close()
    assert min(s.id for s in after) > max(t["id"] for t in tombstones)
    assert after[0].prev_chain == segs[-1].chain
    code, lines = verify(path, capsys)
    assert code == 0, lines
    assert lines[-1].startswith("verified 2 segment(s)") and lines[-1].endswith(": OK")
    # A tombstone that goes behind the agent's back is still a broken link.
    index = SegmentIndex(config.state_dir / "index.db")
    with index.reading() as db:
        db.execute("delete from removed_segments where id = ?", [segs[-1].id])
        db.conn.commit()
    index.close()
    code, lines = verify(path, capsys)
    assert code == 1
    assert lines[:-1] == [
        f"cam1 2025-12-01T00:00:10Z {after[0].path}: does not link to the segment chained before it"
    ]


def test_a_file_the_index_does_not_know_is_reported(
    site: tuple[EdgeConfig, Path, list[Segment]],
    footage: Footage,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, path, _ = site
    extra = copy_clip(footage.short_h264, config.storage.path, "cam1", T0 + 60, 2.0)
    os.utime(extra.path, (T0 + 62, T0 + 62))  # not one being written right now
    code, lines = verify(path, capsys)
    assert (
        code == 1
        and lines[0] == f"cam1 2025-12-01T00:01:00Z {extra.relpath}: file is not in the index"
    )


def test_the_command_line_exit_code_and_bad_times(
    site: tuple[EdgeConfig, Path, list[Segment]],
) -> None:
    config, path, segs = site
    (config.storage.path / segs[3].path).unlink()
    run = subprocess.run(
        [sys.executable, "-m", "edge_agent", "verify", "-c", str(path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1 and run.stdout.splitlines()[0].endswith("file missing")
    bad = subprocess.run(
        [sys.executable, "-m", "edge_agent", "verify", "-c", str(path), "--from", "yesterday"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1 and "not an ISO 8601 time" in bad.stderr
