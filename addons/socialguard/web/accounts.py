"""Who may sign in: a bcrypt htpasswd file checked in constant-ish time, and a limit on
wrong passwords per address and per account so that guessing is slow and recorded."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from pathlib import Path

import bcrypt

# A hash to check against when the account is unknown, so that an unknown name takes as long
# to refuse as a wrong password.
_DUMMY = bcrypt.hashpw(b"not a password", bcrypt.gensalt(rounds=12))
WINDOW_SECONDS = 15 * 60
PER_ACCOUNT = 5
PER_ADDRESS = 20


class PasswordFileError(Exception):
    """The password file cannot be read: the message says which and how to fix it."""


def read_htpasswd(path: Path) -> dict[str, bytes]:
    """`name:$2y$…` lines → {name: bcrypt hash}; other hash kinds are not accepted."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PasswordFileError(
            f"{path}: cannot read the password file ({error.strerror or error}) — check "
            "admin.htpasswd in policy.yaml and the file's permissions"
        ) from None
    accounts: dict[str, bytes] = {}
    for line in text.splitlines():
        name, sep, hashed = line.strip().partition(":")
        if sep and name and hashed.startswith(("$2y$", "$2b$", "$2a$")):
            accounts[name] = hashed.encode()
    return accounts


def check_password(path: Path, name: str, password: str) -> bool:
    """True when `name` is in the file and `password` is its password."""
    hashed = read_htpasswd(path).get(name)
    candidate = password.encode("utf-8")[:72]  # bcrypt reads at most 72 bytes
    try:
        matches = bcrypt.checkpw(candidate, hashed or _DUMMY)
    except ValueError:  # a damaged hash in the file
        return False
    return matches and hashed is not None


class SignInLimiter:
    """Wrong passwords within the last WINDOW_SECONDS, per address and per account name."""

    def __init__(
        self,
        per_account: int = PER_ACCOUNT,
        per_address: int = PER_ADDRESS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_account = per_account
        self.per_address = per_address
        self._clock = clock
        self._failures: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str) -> int:
        stamps = self._failures.get(key)
        if not stamps:
            return 0
        cutoff = self._clock() - WINDOW_SECONDS
        while stamps and stamps[0] < cutoff:
            stamps.popleft()
        return len(stamps)

    def blocked(self, address: str, account: str) -> str | None:
        """Why this attempt is refused without checking the password, or None."""
        with self._lock:
            if self._recent(f"account:{account.lower()}") >= self.per_account:
                return "too many wrong passwords for this account"
            if self._recent(f"address:{address}") >= self.per_address:
                return "too many wrong passwords from this address"
        return None

    def failed(self, address: str, account: str) -> None:
        with self._lock:
            now = self._clock()
            for key in (f"account:{account.lower()}", f"address:{address}"):
                self._failures.setdefault(key, collections.deque(maxlen=1000)).append(now)
            if len(self._failures) > 100_000:  # a flood of names: forget the oldest keys
                for key in list(self._failures)[:50_000]:
                    del self._failures[key]
