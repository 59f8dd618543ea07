"""Pruning anchored links: central keeps a segment's link only as long as someone needs it.

A link is pruned when all of these hold:
- the edge deleted the segment and said so (a tombstone, already judged by the anchor
  checks): a segment the box still holds (an evidence hold keeps it past its retention
  date) keeps its link, so audits, replay and the city archive can still rely on it;
- its retention date plus `margin_s` has passed (late exports are still verified);
- no event of the camera (alerts, evidence, tamper findings) holds footage around it, from
  HOLD_BEFORE_S before its start to HOLD_AFTER_S after its end (a running event holds
  OPEN_EVENT_HOLD_S past its start): `verify-clip` of an alert's clip keeps working;
- it is not the camera's chain head (new links are checked against it).

The last pruned link (the highest in chain order) becomes the camera's checkpoint in
`anchor_checkpoints`: the first link kept after it must carry it as `prev_chain`, so the
stored chain still checks from the checkpoint to the head (`stored_chain_problems`). Links
kept below the checkpoint (held by an event) are checked one by one against their facts.
The city archive needs no pruned link: it takes a segment in only while the edge holds it,
and keeps the anchored SHA-256 in its own index.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import sqlite_utils

from central.alerts.store import HOLD_AFTER_S, HOLD_BEFORE_S, OPEN_EVENT_HOLD_S
from central.integrity.anchors import DAY_S, link_hash
from fsv_contract.integrity import AnchorLink

MARGIN_S = 30 * DAY_S  # kept this long past the retention date
BATCH = 20_000  # links pruned per camera and pass: one short transaction each


@dataclass(frozen=True)
class Pruned:
    """What one pruning pass removed from one camera's anchored chain."""

    site: str
    camera: str
    links: int
    checkpoint: str  # the chain link the kept chain now starts from


def prune_anchors(
    db: sqlite_utils.Database, now: float, margin_s: float = MARGIN_S, batch: int = BATCH
) -> list[Pruned]:
    """Prune every camera's links nobody needs any more (at most `batch` of each camera's
    oldest); call inside a transaction."""
    done = []
    heads = db.execute("select site, camera, path from chain_heads order by site, camera")
    for site, camera, head_path in heads.fetchall():
        pruned = _prune_camera(db, site, camera, head_path, now, margin_s, batch)
        if pruned is not None:
            done.append(pruned)
    return done


def _prune_camera(
    db: sqlite_utils.Database,
    site: str,
    camera: str,
    head_path: str,
    now: float,
    margin_s: float,
    batch: int,
) -> Pruned | None:
    rows = db.execute(
        'select id, path, chain, start, "end" from anchored_segments '
        "where site = ? and camera = ? and removed_at is not null and path != ? "
        '  and "end" + retention_days * ? + ? < ? order by id limit ?',
        [site, camera, head_path, DAY_S, margin_s, now, batch],
    ).fetchall()
    if not rows:
        return None
    held = _held(db, site, camera, max(float(r[4]) for r in rows))
    gone = [r for r in rows if not held.overlaps(float(r[3]), float(r[4]))]
    if not gone:
        return None
    last = max(gone, key=lambda r: int(r[0]))
    before = db.execute(
        "select through_id, pruned from anchor_checkpoints where site = ? and camera = ?",
        [site, camera],
    ).fetchone()
    count = len(gone) + (int(before[1]) if before else 0)
    if before is None or int(last[0]) > int(before[0]):
        db.execute(
            'insert into anchor_checkpoints (site, camera, through_id, chain, path, "end", '
            "pruned, pruned_at) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (site, camera) do "
            "update set through_id = excluded.through_id, chain = excluded.chain, path = "
            'excluded.path, "end" = excluded."end", pruned = excluded.pruned, '
            "pruned_at = excluded.pruned_at",
            [site, camera, int(last[0]), last[2], last[1], float(last[4]), count, now],
        )
    else:  # links held earlier and released now: the checkpoint stays where it is
        db.execute(
            "update anchor_checkpoints set pruned = ?, pruned_at = ? where site = ? and camera = ?",
            [count, now, site, camera],
        )
    ids = [int(r[0]) for r in gone]
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        db.execute(f"delete from anchored_segments where id in ({','.join('?' * len(part))})", part)
    checkpoint = db.execute(
        "select chain from anchor_checkpoints where site = ? and camera = ?", [site, camera]
    ).fetchone()[0]
    return Pruned(site, camera, len(gone), str(checkpoint))


class _Ranges:
    """Sorted, merged [start, end) ranges; `overlaps` in O(log n)."""

    def __init__(self, ranges: list[tuple[float, float]]) -> None:
        merged: list[list[float]] = []
        for start, end in sorted(ranges):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [m[0] for m in merged]
        self.ends = [m[1] for m in merged]

    def overlaps(self, start: float, end: float) -> bool:
        i = bisect.bisect_left(self.starts, end) - 1  # the last range starting before `end`
        return i >= 0 and self.ends[i] > start


def _held(db: sqlite_utils.Database, site: str, camera: str, until: float) -> _Ranges:
    """The footage the camera's events hold (as the alerts' evidence holds do)."""
    rows = db.execute(
        'select start, "end" from events where site = ? and camera = ? and start < ?',
        [site, camera, until + HOLD_BEFORE_S],
    ).fetchall()
    return _Ranges(
        [
            (
                float(start) - HOLD_BEFORE_S,
                (float(start) + OPEN_EVENT_HOLD_S if end is None else float(end)) + HOLD_AFTER_S,
            )
            for start, end in rows
        ]
    )


def stored_chain_problems(db: sqlite_utils.Database, site: str, camera: str) -> list[str]:
    """Whether the chain central stored for a camera still checks, pruning included.

    Every kept link must match its facts; from the checkpoint (or the first link, if none
    was pruned) each link must follow the one before, up to the chain head.
    """
    checkpoint = db.execute(
        "select through_id, chain, path from anchor_checkpoints where site = ? and camera = ?",
        [site, camera],
    ).fetchone()
    through = int(checkpoint[0]) if checkpoint else 0
    expected: str | None = checkpoint[1] if checkpoint else None
    after = checkpoint[2] if checkpoint else None
    problems = []
    rows = db.execute(
        'select id, path, start, "end", bytes, sha256, prev_chain, chain from anchored_segments '
        "where site = ? and camera = ? order by id",
        [site, camera],
    ).fetchall()
    for seg_id, path, start, end, size, sha, prev, chain in rows:
        # Built unvalidated: a row anchored before links had to end after they start is
        # still checked against its hash, not refused as input.
        link = AnchorLink.model_construct(path=path, start=start, end=end, bytes=size,
                                          sha256=sha, prev_chain=prev, chain=chain)  # fmt: skip
        if link_hash(camera, link) != chain:
            problems.append(f"{path}: the stored link does not match its facts")
        if int(seg_id) <= through:
            continue  # kept for an event below the checkpoint: checked by itself
        if expected is not None and prev != expected:
            problems.append(f"{path}: does not follow {after}")
        expected, after = chain, path
    head = db.execute(
        "select chain, path from chain_heads where site = ? and camera = ?", [site, camera]
    ).fetchone()
    if head is not None and expected is not None and head[0] != expected:
        problems.append(f"the chain head {head[1]} is not the last stored link {after}")
    return problems
