"""`central-server vapid-keys` writes a private key once, readable by its owner only."""

from __future__ import annotations

from pathlib import Path

from py_vapid import Vapid

from central.cli import main as cli_main


def test_vapid_key_file_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "k.pem"
    assert cli_main(["vapid-keys", "--out", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert Vapid.from_file(str(out)).public_key is not None
    assert cli_main(["vapid-keys", "--out", str(out)]) == 1  # never overwrites a key
