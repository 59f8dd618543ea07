"""fsv_common.files: a file is replaced whole or not at all, and its folder is synced."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fsv_common import files
from fsv_common.files import write_whole


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_file_is_replaced_with_the_mode_asked_and_no_temporary_file_is_left(
    tmp_path: Path,
) -> None:
    target = tmp_path / "sub" / "acl"
    assert write_whole(target, b"first", mode=0o640)
    assert write_whole(target, b"second", mode=0o640)
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert leftovers(target.parent) == []


def test_without_replace_the_file_already_there_wins(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    assert write_whole(target, b"theirs", replace=False)
    assert not write_whole(target, b"mine", replace=False)
    assert target.read_bytes() == b"theirs"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "snapshot.jpg"
    write_whole(target, b"old bytes")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_whole(target, b"new bytes")
    assert target.read_bytes() == b"old bytes"
    assert leftovers(tmp_path) == []


def test_the_folder_is_synced_after_the_name_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[bool, bool]] = []  # (a folder, the target there yet)
    real_fsync = os.fsync
    target = tmp_path / "key.pem"

    def watch(fd: int) -> None:
        synced.append((stat.S_ISDIR(os.fstat(fd).st_mode), target.exists()))
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", watch)
    write_whole(target, b"key", replace=False)
    assert synced == [(False, False), (True, True)]


def test_a_finished_file_is_synced_before_its_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "0001.mp4"
    target.write_bytes(b"old")
    part = tmp_path / "0001.mp4.part"
    part.write_bytes(b"received in parts")
    synced: list[tuple[bool, bytes]] = []  # (a folder, what the name holds then)
    real_fsync = os.fsync

    def watch(fd: int) -> None:
        synced.append((stat.S_ISDIR(os.fstat(fd).st_mode), target.read_bytes()))
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", watch)
    files.put_in_place(part, target)
    assert synced == [(False, b"old"), (True, b"received in parts")]
    assert not part.exists()
