"""Checks a site's login against the broker's password file (one credential per site)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
from collections.abc import Callable
from pathlib import Path


class SitePasswords:
    """Verifies `username:password` against a mosquitto password file.

    The file is the one `central-server add-site` maintains, so a site uses the same
    credential for MQTT and for media uploads. It is re-read when it changes on disk.
    Formats: `$7$` (PBKDF2-SHA512, mosquitto 2) and `$6$` (salted SHA-512, mosquitto 1.x).
    """

    def __init__(self, path: Path, excluded: Callable[[str], bool] = lambda _user: False) -> None:
        self.path = path
        self.excluded = excluded
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._entries: dict[str, str] = {}

    def verify(self, username: str, password: str) -> bool:
        """True if the file holds this user with this password (never for excluded users)."""
        if self.excluded(username):
            return False
        entry = self._load().get(username)
        if entry is None:
            return False
        return check_mosquitto_hash(entry, password)

    def _load(self) -> dict[str, str]:
        with self._lock:
            try:
                st = self.path.stat()
            except OSError:
                self._entries, self._stamp = {}, None
                return self._entries
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                entries = {}
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    user, sep, digest = line.strip().partition(":")
                    if sep and user and not user.startswith("#"):
                        entries[user] = digest
                self._entries, self._stamp = entries, stamp
            return self._entries


def check_mosquitto_hash(entry: str, password: str) -> bool:
    """Compare a password with one mosquitto_passwd hash, in constant time."""
    parts = entry.split("$")
    try:
        if len(parts) == 5 and parts[1] == "7":
            salt, digest = base64.b64decode(parts[3]), base64.b64decode(parts[4])
            candidate = hashlib.pbkdf2_hmac(
                "sha512", password.encode(), salt, int(parts[2]), dklen=len(digest)
            )
        elif len(parts) == 4 and parts[1] == "6":
            salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            candidate = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(candidate, digest)
