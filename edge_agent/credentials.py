"""Camera credentials from the environment or a credentials file, never from the config."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import yaml

from edge_agent.errors import CredentialError

SYSTEMD_CREDENTIAL = "camera-credentials"


@dataclass(frozen=True)
class Credential:
    """A user name and password for one camera login."""

    username: str
    password: str = ""

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r}, password='***')"


class CredentialStore:
    """Looks credentials up by name.

    Order: environment (`EDGE_CRED_<NAME>_USER` / `EDGE_CRED_<NAME>_PASSWORD`), then the
    credentials file (YAML `name: {username: ..., password: ...}`), which defaults to the
    systemd credential `camera-credentials` when `$CREDENTIALS_DIRECTORY` is set.
    """

    def __init__(self, path: Path | None = None, environ: dict[str, str] | None = None) -> None:
        self._env = dict(os.environ if environ is None else environ)
        if path is None and self._env.get("CREDENTIALS_DIRECTORY"):
            candidate = Path(self._env["CREDENTIALS_DIRECTORY"]) / SYSTEMD_CREDENTIAL
            path = candidate if candidate.exists() else None
        self._path = path
        self._entries = self._load(path) if path is not None else {}

    @staticmethod
    def _load(path: Path) -> dict[str, Credential]:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise CredentialError(f"cannot read credentials file {path}: {e}") from e
        if not isinstance(data, dict):
            raise CredentialError(f"{path}: must map names to {{username, password}}")
        entries = {}
        for name, value in data.items():
            if not isinstance(value, dict) or not isinstance(value.get("username"), str):
                raise CredentialError(f"{path}: entry {name!r} needs a username (a string)")
            entries[str(name)] = Credential(value["username"], str(value.get("password", "")))
        return entries

    def get(self, name: str) -> Credential:
        """The credential called `name`; CredentialError if it is defined nowhere."""
        key = name.upper()
        user = self._env.get(f"EDGE_CRED_{key}_USER")
        if user is not None:
            return Credential(user, self._env.get(f"EDGE_CRED_{key}_PASSWORD", ""))
        if name in self._entries:
            return self._entries[name]
        where = f"the credentials file {self._path}" if self._path else "no credentials file"
        raise CredentialError(
            f"credential {name!r} is not defined: set EDGE_CRED_{key}_USER and "
            f"EDGE_CRED_{key}_PASSWORD, or add it to {where}"
        )


def with_credential(url: str, credential: Credential | None) -> str:
    """The URL to connect to, with the login inserted (never log the result)."""
    if credential is None:
        return url
    parts = urlsplit(url)
    login = quote(credential.username, safe="")
    if credential.password:
        login += ":" + quote(credential.password, safe="")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{login}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
