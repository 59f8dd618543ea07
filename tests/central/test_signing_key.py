"""Central's signing key when several nodes start at once on one data folder."""

from __future__ import annotations

import multiprocessing
import stat
from multiprocessing.synchronize import Barrier
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from central.video.signing import KEY_FILE, ManifestSigner

NODES = 8


def _start_node(path: str, barrier: Barrier, results: multiprocessing.Queue[str]) -> None:
    barrier.wait(10)
    try:
        public = ManifestSigner(Path(path)).public_key
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        results.put(raw.hex())
    except Exception as e:  # noqa: BLE001 - the parent reports what each node hit
        results.put(f"error: {type(e).__name__}: {e}")


def test_nodes_starting_together_make_one_key_and_all_sign_with_it(tmp_path: Path) -> None:
    path = tmp_path / "data" / KEY_FILE
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(NODES)
    results: multiprocessing.Queue[str] = ctx.Queue()
    procs = [
        ctx.Process(target=_start_node, args=(str(path), barrier, results)) for _ in range(NODES)
    ]
    for p in procs:
        p.start()
    answers = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert [a for a in answers if a.startswith("error")] == []
    assert len(set(answers)) == 1, answers
    # The key on disk is the one they sign with, private to central, and nothing is left over.
    on_disk = ManifestSigner(path).public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert on_disk.hex() == answers[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [KEY_FILE]


def test_a_key_that_is_there_is_kept(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    first = ManifestSigner(path)
    again = ManifestSigner(path)
    assert first.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    ) == again.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
