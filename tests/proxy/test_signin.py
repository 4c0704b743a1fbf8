"""Remembered proxy sign-ins: bcrypt is paid once per person per few minutes, not per request."""

from __future__ import annotations

from socialguard.proxy.signin import CachedValidator


class CountingValidator:
    """Stands in for the htpasswd check and counts how often it is asked."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, username: str, password: str) -> bool:
        self.calls += 1
        return (username, password) == ("j.smith", "secret")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_verified_credentials_are_remembered() -> None:
    """A hundred requests with the right password verify the password once."""
    inner = CountingValidator()
    cached = CachedValidator(inner, clock=Clock())
    assert all(cached("j.smith", "secret") for _ in range(100))
    assert inner.calls == 1


def test_wrong_password_is_always_checked_and_refused() -> None:
    """Failures are never cached, and a remembered success does not admit another password."""
    inner = CountingValidator()
    cached = CachedValidator(inner, clock=Clock())
    assert cached("j.smith", "secret")
    assert not cached("j.smith", "wrong")
    assert not cached("j.smith", "wrong")
    assert inner.calls == 3


def test_remembered_sign_in_expires() -> None:
    """After the cache lifetime the password is verified again."""
    inner, clock = CountingValidator(), Clock()
    cached = CachedValidator(inner, seconds=300, clock=clock)
    cached("j.smith", "secret")
    clock.now += 299
    cached("j.smith", "secret")
    clock.now += 2
    cached("j.smith", "secret")
    assert inner.calls == 2


def test_cache_is_bounded_and_holds_no_password() -> None:
    """The cache never grows past its size, and its keys do not contain the password."""
    accept_all_calls = []

    def accept_all(username: str, password: str) -> bool:
        accept_all_calls.append(username)
        return True

    cached = CachedValidator(accept_all, size=10, clock=Clock())
    for i in range(50):
        cached(f"user{i}", "hunter2")
    assert len(cached._verified) == 10
    assert all(b"hunter2" not in key for key in cached._verified)
    cached("user0", "hunter2")  # evicted long ago: checked again
    assert accept_all_calls.count("user0") == 2
