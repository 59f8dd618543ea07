"""Rectification evidence photos: checked by content, stored by SHA-256 under the alert."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from central.errors import InvalidInputError
from central.ingest.media_types import ALLOWED_TYPES, SNIFF_BYTES, sniff
from central.schema import LockedDb
from fsv_common.files import write_whole


def sniff_image(data: bytes) -> tuple[str, str]:
    """(content type, extension) of a JPEG, PNG or WebP image; InvalidInputError otherwise.

    Content sniffing against the media allow-list, not the client's word: only real images
    become evidence.
    """
    ctype = sniff(data[:SNIFF_BYTES])
    if ctype is None or not ctype.startswith("image/"):
        raise InvalidInputError("evidence must be a JPEG, PNG or WebP photo")
    return ctype, ALLOWED_TYPES[ctype]


def store_evidence(
    root: Path, alert_id: str, filename: str, data: bytes, user_id: int
) -> dict[str, Any]:
    """Write one photo (atomically, fsynced) and return its `evidence` row without ids."""
    ctype, ext = sniff_image(data)
    digest = hashlib.sha256(data).hexdigest()
    folder = root / alert_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.{ext}"
    if not path.exists():
        write_whole(path, data, mode=0o644)
    return {
        "filename": Path(filename or f"photo.{ext}").name[:200],
        "content_type": ctype,
        "bytes": len(data),
        "sha256": digest,
        "path": str(path),
        "uploaded_by": user_id,
        "uploaded_at": time.time(),
    }


def discard_unreferenced(ldb: LockedDb, root: Path, rows: list[dict[str, Any]]) -> int:
    """Delete the files of `rows` no evidence row points at (a refused submission's photos).

    The check and the deletion happen under the database lock, so a photo another submission
    of the same bytes has meanwhile recorded is kept. Returns how many files were removed.
    """
    removed = 0
    with ldb.transaction() as db:
        for row in rows:
            path = Path(row["path"])
            used = list(db.query("select 1 from evidence where path = ? limit 1", [str(path)]))
            if not used and path.is_file():
                path.unlink()
                removed += 1
            folder = path.parent
            if folder.parent == root and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return removed
