"""Remembered proxy sign-ins: bcrypt is paid once per person per few minutes, not per request."""

from __future__ import annotations

from pathlib import Path

import bcrypt

from socialguard.proxy.signin import (
    BURST_MAX_SECONDS,
    BURST_QUIET_SECONDS,
    CachedValidator,
    FailureLimiter,
    PasswordFile,
    failed_fields,
)


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


def test_forget_drops_every_remembered_sign_in_and_any_check_under_way() -> None:
    """When the password file changes nothing verified against the old one is remembered."""
    inner = CountingValidator()
    cached = CachedValidator(inner, clock=Clock())
    assert cached("j.smith", "secret")
    cached.forget()
    assert not cached.remembered("j.smith", "secret")

    racing: list[CachedValidator] = []

    def check_across_a_change(username: str, password: str) -> bool:
        racing[0].forget()  # the file changes while this check runs
        return True

    racing.append(CachedValidator(check_across_a_change, clock=Clock()))
    checker = racing[0]
    assert checker.check("j.smith", "secret")
    assert not checker.remembered("j.smith", "secret")


def test_an_address_over_the_limit_is_not_checked_until_the_window_ends() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=3, window=60, clock=clock)
    for _ in range(3):
        assert limiter.allowed("10.0.0.9")
        limiter.failed("10.0.0.9", "carol", checked=True)
    assert not limiter.allowed("10.0.0.9")
    assert limiter.allowed("10.0.0.10")  # another machine is not held up
    clock.now += 61
    assert limiter.allowed("10.0.0.9")


def test_checks_under_way_count_against_the_limit() -> None:
    """A thousand guesses sent at once do not all reach bcrypt before the first fails."""
    limiter = FailureLimiter(limit=3, clock=Clock())
    for _ in range(3):
        limiter.checking("10.0.0.9")
    assert not limiter.allowed("10.0.0.9")
    limiter.checked("10.0.0.9")
    assert limiter.allowed("10.0.0.9")


def test_a_burst_is_one_event_with_a_count_once_it_is_quiet() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=3, clock=clock)
    for n in range(50):
        limiter.failed("10.0.0.9", f"user{n % 7}", checked=n < 3)
        clock.now += 0.1
    assert limiter.due() == []  # still going
    clock.now += BURST_QUIET_SECONDS
    [(address, burst)] = limiter.due()
    fields = failed_fields(address, burst, limiter)
    assert fields["count"] == 50
    assert fields["refused_unchecked"] == 47
    assert fields["users"] == ["user0", "user1", "user2", "user3", "user4"]  # bounded
    assert "50 failed sign-ins from 10.0.0.9" in fields["detail"]
    assert limiter.due() == []


def test_a_long_flood_is_recorded_as_it_goes() -> None:
    clock = Clock()
    limiter = FailureLimiter(clock=clock)
    recorded = 0
    for _ in range(int(BURST_MAX_SECONDS * 2.5)):
        limiter.failed("10.0.0.9", "carol", checked=False)
        clock.now += 1
        recorded += len(limiter.due())
    assert recorded == 2


def test_the_password_file_is_followed_and_a_broken_one_kept_out(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(entry("carol", "one"))
    passwords = PasswordFile(path)
    assert passwords("carol", "one")
    assert passwords.poll() is None
    path.write_text(entry("carol", "two") + entry("dave", "three"))
    assert passwords.poll() is None  # changed: taken once it holds still for one look
    assert passwords.poll() == "reloaded"
    assert passwords("carol", "two")
    assert not passwords("carol", "one")
    path.write_text("no colon here\n")
    passwords.poll()
    problem = passwords.poll()
    assert problem is not None
    assert "Malformed" in problem
    assert passwords.poll() is None  # reported once
    assert passwords("dave", "three")  # the last good file stays
    path.unlink()
    passwords.poll()
    assert passwords.poll() == "the file is missing (deleted or moved)"
    assert passwords("dave", "three")


def entry(user: str, password: str) -> str:
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}\n"
