"""The `audit` command: hash the named segment files as they are on disk now.

Central picks the segments (at random, across the retention period) and compares each
digest with the one it anchored. This agent hashes the file on disk, never its index, so
footage deleted or rewritten under it is reported; the digest is one central already holds,
so a box running other software could replay it (docs/central.md, "Integrity audits").
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge_agent.recording.index import SegmentIndex
from fsv_common.digest import file_sha256
from fsv_contract.integrity import AuditArgs, AuditProof, AuditResult, AuditSample

log = logging.getLogger(__name__)


def prove(index: SegmentIndex, storage: Path, sample: AuditSample) -> AuditProof:
    """What is on disk (and in the index) for one sample."""
    with index.reading() as db:
        row = db.execute("select camera from segments where path = ?", [sample.path]).fetchone()
        gone = db.execute(
            "select removed_at, reason from removed_segments where path = ? "
            "order by rowid desc limit 1",
            [sample.path],
        ).fetchone()
    indexed = row is not None and row[0] == sample.camera
    file = storage / sample.path
    base = {"camera": sample.camera, "path": sample.path, "indexed": indexed}
    if not sample.path.startswith(f"{sample.camera}/"):
        return AuditProof(**base, state="missing")
    try:
        size = file.stat().st_size
        digest = file_sha256(file)
    except FileNotFoundError:
        if gone is not None and not indexed:
            reason = str(gone[1] or "")[:100]
            return AuditProof(**base, state="removed", removed_at=gone[0], removed_reason=reason)
        return AuditProof(**base, state="missing")
    except OSError as e:
        log.error("audit cannot read %s: %s", sample.path, e)
        return AuditProof(**base, state="unreadable")
    return AuditProof(**base, state="present", sha256=digest, bytes=size)


def audit_handler(index: SegmentIndex, storage: Path) -> Any:
    """The handler of verb `audit` for the command dispatcher."""

    def handle(args: dict[str, Any]) -> dict[str, Any]:
        try:
            parsed = AuditArgs.model_validate(args)
        except ValidationError as e:
            raise ValueError(f"bad audit arguments: {e.error_count()} error(s)") from e
        proofs = [prove(index, storage, s) for s in parsed.samples]
        log.info("audit: proved %d segment(s)", len(proofs))
        return AuditResult(proofs=proofs).model_dump(mode="json")

    return handle
