"""Files written whole: a reader sees the old file or the whole new one, never a part.

Config, keys and evidence are written to a private temporary file beside the target,
synced, then put in place by one rename (or one link, when an existing file must win),
and the folder is synced so the new name survives a power cut as well as the bytes. Files
written in a stream (a clip cut by the muxer, an upload received in parts) are put in
place the same way once finished (`put_in_place`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_whole(
    path: Path,
    data: bytes,
    *,
    mode: int = 0o600,
    owner: tuple[int, int] | None = None,
    replace: bool = True,
) -> bool:
    """Put `data` at `path` in one step; True if it was written.

    With `replace=False` an existing file is kept and nothing is written (False): of
    several processes making the same file at once, exactly one wins and the others can
    read its whole content. `owner` (uid, gid) is applied when running as root.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if owner is not None and os.geteuid() == 0:
            os.chown(tmp, *owner)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
    finally:
        Path(tmp).unlink(missing_ok=True)
    sync_folder(path.parent)
    return True


def put_in_place(tmp: Path, path: Path) -> None:
    """Replace `path` with the finished file `tmp` from the same folder, durably.

    `tmp`'s bytes are synced before the rename and the folder after it, so a power cut
    leaves the old file or the whole new one under the name, never a name whose bytes
    never reached the disk (an index row may already count on that name).
    """
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so the names created or renamed in it are on disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
