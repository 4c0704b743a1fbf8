"""mitmproxy's proxy authentication, with verified credentials remembered for a while.

mitmproxy checks the password on every plain-HTTP request and every new tunnel; a bcrypt check
costs about 55 ms of CPU, which would stall the whole practice. A verified Proxy-Authorization
is remembered under a keyed hash (never the password), bounded in size and time.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from mitmproxy.addons import proxyauth

CACHE_SIZE = 4096
CACHE_SECONDS = 300.0


class CachedValidator:
    """Wraps a validator; only successes are remembered, so a wrong password is always checked."""

    def __init__(
        self,
        validator: Callable[[str, str], bool],
        size: int = CACHE_SIZE,
        seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._validator = validator
        self._key = secrets.token_bytes(32)  # per process: the cache is useless to anyone else
        self._size = size
        self._seconds = seconds
        self._clock = clock
        self._verified: collections.OrderedDict[bytes, float] = collections.OrderedDict()

    def _digest(self, username: str, password: str) -> bytes:
        message = username.encode() + b"\0" + password.encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def __call__(self, username: str, password: str) -> bool:
        key = self._digest(username, password)
        now = self._clock()
        expires = self._verified.get(key)
        if expires is not None:
            if expires > now:
                self._verified.move_to_end(key)
                return True
            del self._verified[key]
        if not self._validator(username, password):
            return False
        self._verified[key] = now + self._seconds
        if len(self._verified) > self._size:
            self._verified.popitem(last=False)
        return True


class CachingProxyAuth(proxyauth.ProxyAuth):
    """mitmproxy's ProxyAuth with its validator wrapped in a CachedValidator."""

    def configure(self, updated: set[str]) -> None:
        super().configure(updated)  # type: ignore[no-untyped-call]
        if "proxyauth" in updated and self.validator is not None:
            self.validator = CachedValidator(self.validator)  # type: ignore[assignment]
