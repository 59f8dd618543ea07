"""Camera credentials come from the environment or a credentials file and stay out of text."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.credentials import Credential, CredentialStore, with_credential
from edge_agent.errors import CredentialError


def test_environment_wins_over_file(tmp_path: Path) -> None:
    f = tmp_path / "creds.yaml"
    f.write_text("hik: {username: admin, password: 'file-pw'}\n")
    env = {"EDGE_CRED_HIK_USER": "ops", "EDGE_CRED_HIK_PASSWORD": "env-pw"}
    assert CredentialStore(f, env).get("hik") == Credential("ops", "env-pw")
    assert CredentialStore(f, {}).get("hik") == Credential("admin", "file-pw")


def test_systemd_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "camera-credentials").write_text("dahua: {username: u, password: p}\n")
    store = CredentialStore(None, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert store.get("dahua") == Credential("u", "p")


def test_unknown_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="EDGE_CRED_NOPE_USER"):
        CredentialStore(None, {}).get("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("hik: just-a-string\n")
    with pytest.raises(CredentialError, match="needs a username"):
        CredentialStore(bad, {})


def test_url_and_repr() -> None:
    cred = Credential("ad min", "p@ss:w/rd")
    url = with_credential("rtsp://10.0.0.5:554/Streaming/101?x=1", cred)
    assert url == "rtsp://ad%20min:p%40ss%3Aw%2Frd@10.0.0.5:554/Streaming/101?x=1"
    assert "p@ss" not in repr(cred)
    assert with_credential("rtsp://h/x", None) == "rtsp://h/x"
