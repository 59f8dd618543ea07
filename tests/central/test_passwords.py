"""scrypt hashes, password strength and tokens."""

import pytest

from central.regulation.passwords import (
    check_password_strength,
    hash_password,
    token_digest,
    verify_password,
)


def test_hash_round_trip_and_salted() -> None:
    h1, h2 = hash_password("correct horse 1"), hash_password("correct horse 1")
    assert h1 != h2 and h1.startswith("scrypt$32768$8$1$")
    assert verify_password("correct horse 1", h1)
    assert not verify_password("correct horse 2", h1)
    assert not verify_password("x", "garbage")
    assert not verify_password("x", "scrypt$1$2$3$!!$!!")


def test_strength_and_token_digest() -> None:
    with pytest.raises(ValueError):
        check_password_strength("short1")
    with pytest.raises(ValueError):
        check_password_strength("onlyletterslong")
    check_password_strength("letters-and-123")
    assert token_digest("a") != token_digest("b") and len(token_digest("a")) == 64
