"""Password hashing with scrypt (memory-hard) and random tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt cost: n=2**15, r=8 needs 32 MiB per hash; about 50-100 ms on a server core, which
# makes offline guessing of a stolen database expensive while a login stays quick.
SCRYPT_N = 1 << 15
SCRYPT_R = 8
SCRYPT_P = 1
_MAXMEM = 64 << 20
MIN_PASSWORD_LENGTH = 10


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """A self-describing hash ``scrypt$n$r$p$salt$key`` of `password` with a fresh salt."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=_MAXMEM, dklen=32
    )
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """True if `password` matches `encoded`; False for any malformed hash."""
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def check_password_strength(password: str) -> None:
    """Raise ValueError if a new password is too weak to accept."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if password.isdigit() or password.isalpha():
        raise ValueError("a password needs letters and digits or symbols")


def new_token() -> str:
    """A random URL-safe token of 256 bits (session ids, API tokens, public links)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database keeps of a token: its SHA-256, so a leaked table grants nothing."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
