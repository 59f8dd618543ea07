"""An exported clip's segments against the chain links central anchored from the edge.

The manifest's own chain proves only that the box's index agreed with itself when it cut
the clip; the anchored links prove that these are the segments the box sealed back then.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from central.storage import pg
from fsv_contract.video import ClipManifest


def anchor_problems(manifest: ClipManifest, database: Path | str) -> tuple[list[str], list[str]]:
    """Problems of the manifest's segments against central's anchors, and notes.

    `database`: central's SQLite file, or a postgresql:// URL (read in a read-only
    transaction)."""
    conn: Any
    try:
        if pg.is_postgres_url(database):
            conn = pg.PgConn(pg.connect(str(database), autocommit=False, read_only=True))
            database = pg.safe_url(str(database))
        else:
            conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    except (sqlite3.Error, psycopg.Error) as e:
        return [f"cannot open central's database {database}: {e}"], []
    try:
        return _check(conn, manifest)
    except sqlite3.Error as e:
        return [f"cannot read the anchored chain from {database}: {e}"], []
    finally:
        conn.close()


def _check(conn: Any, manifest: ClipManifest) -> tuple[list[str], list[str]]:
    mismatches, notes = anchor_mismatches(conn, manifest)
    return [f"{path}: {problem}" for path, problem in mismatches], notes


NOT_ANCHORED = "not in the chain central anchored from the edge"
DIFFERS = "differs from the link central anchored"


def anchor_mismatches(conn: Any, manifest: ClipManifest) -> tuple[list[tuple[str, str]], list[str]]:
    """(segment path, problem) for each of the manifest's segments that the anchored chain
    does not vouch for, and notes; `conn` answers `execute` on central's database."""
    head = conn.execute(
        'select a."end" from chain_heads h join anchored_segments a on a.site = h.site '
        "and a.camera = h.camera and a.path = h.path where h.site = ? and h.camera = ?",
        [manifest.site, manifest.camera],
    ).fetchone()
    if head is None:
        return [], [f"central holds no anchored chain of {manifest.site}/{manifest.camera}"]
    problems: list[tuple[str, str]] = []
    matched = newer = 0
    for seg in manifest.segments:
        row = conn.execute(
            "select sha256, bytes, chain from anchored_segments "
            "where site = ? and camera = ? and path = ?",
            [manifest.site, manifest.camera, seg.path],
        ).fetchone()
        if row is None and seg.start >= float(head[0]):
            newer += 1  # sealed after the last anchor central received
        elif row is None:
            problems.append((seg.path, NOT_ANCHORED))
        elif (row[0], int(row[1]), row[2]) != (seg.sha256, seg.bytes, seg.chain):
            problems.append((seg.path, DIFFERS))
        else:
            matched += 1
    notes = [f"{matched} segment(s) match the chain central anchored from the edge"]
    if newer:
        notes.append(f"{newer} segment(s) sealed after the last anchor: not vouched for yet")
    return problems, notes
