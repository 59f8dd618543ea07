"""scrypt hashes and the login throttle."""

import pytest

from central.regulation.passwords import (
    LoginThrottle,
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


def test_throttle_blocks_after_failures_then_window_passes() -> None:
    t = LoginThrottle(max_failures=3, window_s=60)
    keys = ["user:bob", "ip:1.2.3.4"]
    for i in range(3):
        assert t.retry_after(keys, now=100 + i) == 0
        t.failed(keys, now=100 + i)
    assert t.retry_after(keys, now=103) == pytest.approx(57)
    assert t.retry_after(["user:alice", "ip:1.2.3.4"], now=103) > 0  # same address
    assert t.retry_after(keys, now=161) == 0
    t.failed(keys, now=170)
    t.succeeded("user:bob")
    assert t.retry_after(["user:bob"], now=171) == 0
