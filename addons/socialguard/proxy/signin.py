"""Proxy sign-in: passwords checked off the event loop, guesses limited, the file followed.

mitmproxy checks the password on every plain-HTTP request and every new tunnel, on its one event
loop; a bcrypt check costs about 55 ms of CPU, so twenty wrong guesses a second would stall every
user of the practice. Here:

- a verified Proxy-Authorization is remembered under a keyed hash (never the password), bounded
  in size and time, so a signed-in user costs a dictionary look-up;
- anything else is checked in a small thread pool, with a bound on how many checks may wait;
- an address that has failed `FAIL_LIMIT` times within `FAIL_WINDOW_SECONDS` is refused
  without a check until the window ends (a remembered credential still works from it), and
  each burst of failures from one address is one `auth.failed` event with a count;
- the htpasswd file is followed like the policy files: a change is taken within about a
  second, and every remembered credential is forgotten when it is; a file that cannot be read
  is an `auth.rejected` and the last good one stays.
"""

from __future__ import annotations

import asyncio
import binascii
import collections
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mitmproxy import ctx, exceptions, http
from mitmproxy.addons import proxyauth
from mitmproxy.utils import htpasswd

from socialguard.core.events import Event
from socialguard.core.settings import proxyauth_problem

logger = logging.getLogger("socialguard")

CACHE_SIZE = 4096
CACHE_SECONDS = 300.0
# One thread, at a lower scheduling priority than the event loop: the gateway has few cores,
# and sign-ins that are not remembered are rare; the event loop must keep a core to relay.
WORKERS = 1
WORKER_NICENESS = 10
# Checks that may wait for a thread; beyond this a sign-in is refused at once (fail closed).
MAX_WAITING = 64
FAIL_LIMIT = 10
FAIL_WINDOW_SECONDS = 60.0
# A burst of failures is recorded once it has been quiet this long, or at least this often
# while it goes on, so a long flood still shows in the record as it happens.
BURST_QUIET_SECONDS = 30.0
BURST_MAX_SECONDS = 300.0
POLL_SECONDS = 0.5
USERS_RECORDED = 5

FAILED = Event.AUTH_FAILED
RELOADED = Event.AUTH_RELOADED
REJECTED = Event.AUTH_REJECTED


class Recorder(Protocol):
    """Where events go: the AuditLog in the proxy, a list in tests."""

    def record(self, event: str, fields: dict[str, Any]) -> Any: ...


class CachedValidator:
    """Wraps a validator; only successes are remembered, so a wrong password is always checked.

    `generation` moves on when the password file changes: a check that began before the change
    is not remembered after it.
    """

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
        self._lock = threading.Lock()
        self.generation = 0

    def _digest(self, username: str, password: str) -> bytes:
        message = username.encode() + b"\0" + password.encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def remembered(self, username: str, password: str) -> bool:
        """True if this pair was verified lately (no password check is run)."""
        key = self._digest(username, password)
        with self._lock:
            expires = self._verified.get(key)
            if expires is None:
                return False
            if expires > self._clock():
                self._verified.move_to_end(key)
                return True
            del self._verified[key]
            return False

    def check(self, username: str, password: str) -> bool:
        """Run the real check (slow: call it off the event loop) and remember a success."""
        generation = self.generation
        if not self._validator(username, password):
            return False
        with self._lock:
            if generation == self.generation:
                self._verified[self._digest(username, password)] = self._clock() + self._seconds
                if len(self._verified) > self._size:
                    self._verified.popitem(last=False)
        return True

    def forget(self) -> None:
        """Forget every remembered credential (the password file changed)."""
        with self._lock:
            self.generation += 1
            self._verified.clear()

    def __call__(self, username: str, password: str) -> bool:
        return self.remembered(username, password) or self.check(username, password)


@dataclass
class Burst:
    """Failed sign-ins from one address, recorded together."""

    first: float
    first_ts: str
    last: float = 0.0
    last_ts: str = ""
    count: int = 0
    refused_unchecked: int = 0
    users: list[str] = field(default_factory=list)


class FailureLimiter:
    """Counts failed sign-ins per client address; an address over the limit is not checked."""

    def __init__(
        self,
        limit: int = FAIL_LIMIT,
        window: float = FAIL_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._wall = wall
        self._failures: dict[str, collections.deque[float]] = {}
        self._checking: collections.Counter[str] = collections.Counter()
        self.bursts: dict[str, Burst] = {}

    def _recent(self, address: str, now: float) -> int:
        times = self._failures.get(address)
        if not times:
            return 0
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return 0
        return len(times)

    def allowed(self, address: str) -> bool:
        """May a password from this address be checked now? Checks under way count as failures
        to come, so a thousand guesses sent at once do not all reach bcrypt."""
        return self._recent(address, self._clock()) + self._checking[address] < self.limit

    def checking(self, address: str) -> None:
        self._checking[address] += 1

    def checked(self, address: str) -> None:
        self._checking[address] -= 1
        if self._checking[address] <= 0:
            del self._checking[address]

    def failed(self, address: str, user: str, *, checked: bool) -> None:
        now = self._clock()
        stamp = self._wall().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if checked:
            self._failures.setdefault(address, collections.deque()).append(now)
        burst = self.bursts.get(address)
        if burst is None:
            burst = self.bursts[address] = Burst(first=now, first_ts=stamp)
        burst.last, burst.last_ts = now, stamp
        burst.count += 1
        if not checked:
            burst.refused_unchecked += 1
        user = user[:64]
        if user and user not in burst.users and len(burst.users) < USERS_RECORDED:
            burst.users.append(user)

    def due(self, *, everything: bool = False) -> list[tuple[str, Burst]]:
        """The bursts to record now (quiet long enough, or long enough), removed from here."""
        now = self._clock()
        done = [
            (address, burst)
            for address, burst in self.bursts.items()
            if everything
            or now - burst.last >= BURST_QUIET_SECONDS
            or now - burst.first >= BURST_MAX_SECONDS
        ]
        for address, _ in done:
            del self.bursts[address]
        return done


def failed_fields(address: str, burst: Burst, limiter: FailureLimiter) -> dict[str, Any]:
    """What an `auth.failed` event says about one burst."""
    unchecked = burst.refused_unchecked
    detail = f"{burst.count} failed sign-in{'s' if burst.count != 1 else ''} from {address}"
    if unchecked:
        detail += (
            f"; {unchecked} refused unchecked after {limiter.limit} failures within "
            f"{limiter.window:g} s"
        )
    return {
        "client_ip": address,
        "user": burst.users[0] if burst.users else None,
        "users": burst.users,
        "count": burst.count,
        "refused_unchecked": unchecked,
        "from_ts": burst.first_ts,
        "to_ts": burst.last_ts,
        "reason": "wrong_password",
        "detail": detail,
    }


Stamp = tuple[int, int, int] | None


def file_stamp(path: Path) -> Stamp:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class PasswordFile:
    """An htpasswd file, re-read when it changes; the last good copy is used meanwhile."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp = file_stamp(path)
        try:
            self.users = htpasswd.HtpasswdFile.from_file(path)
        except (OSError, ValueError) as error:
            raise exceptions.OptionsError(f"cannot use the password file {path}: {error}") from None
        self._pending: Stamp = self.stamp
        # The stamp of the file last refused (so it is reported once); nothing at first.
        self.failed_stamp: Stamp | str = "none"

    def __call__(self, username: str, password: str) -> bool:
        return self.users.check_password(username, password)

    def poll(self) -> str | None:
        """Look once (blocking: call it in a thread). 'reloaded', a problem, or None.

        A change is taken once it has held still for one poll, so a file caught half-written
        by an editor is not read.
        """
        stamp = file_stamp(self.path)
        if stamp in (self.stamp, self.failed_stamp):
            self._pending = stamp
            return None
        if stamp != self._pending:
            self._pending = stamp
            return None
        self.failed_stamp = stamp
        if stamp is None:
            return "the file is missing (deleted or moved)"
        try:
            users = htpasswd.HtpasswdFile.from_file(self.path)
        except (OSError, ValueError) as error:
            return str(error)
        self.users, self.stamp, self.failed_stamp = users, stamp, "none"
        return "reloaded"


class SignIn(proxyauth.ProxyAuth):
    """mitmproxy's ProxyAuth, its checks moved off the event loop and limited per address."""

    def __init__(
        self,
        audit: Recorder | None = None,
        *,
        workers: int = WORKERS,
        limiter: FailureLimiter | None = None,
    ) -> None:
        super().__init__()
        self._audit = audit
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix="socialguard-signin",
            initializer=_lower_priority,
        )
        self._waiting = 0
        self.limiter = limiter or FailureLimiter()
        self.password_file: PasswordFile | None = None
        self.cached: CachedValidator | None = None
        self._serial = threading.Lock()  # LDAP connections are not shared between threads
        self._tasks: list[asyncio.Task[None]] = []

    def configure(self, updated: set[str]) -> None:
        if "proxyauth" not in updated:
            return
        spec = ctx.options.proxyauth
        if not spec:
            self.validator = self.cached = self.password_file = None
            return
        problem = proxyauth_problem(spec)
        if problem:
            raise exceptions.OptionsError(f"proxyauth: {problem}")
        inner: Callable[[str, str], bool]
        if spec.startswith("@"):
            self.password_file = PasswordFile(Path(spec[1:]).expanduser())
            inner = self.password_file
        else:
            super().configure(updated)  # type: ignore[no-untyped-call]
            other = self.validator
            if other is None:
                raise exceptions.OptionsError(f"proxyauth: {spec!r} is not a sign-in spec")

            def inner(username: str, password: str) -> bool:
                with self._serial:
                    return bool(other(username, password))

        self.cached = CachedValidator(inner)
        self.validator = self.cached  # type: ignore[assignment]

    # -- the hooks, asynchronous so a check waits without holding up anyone else -------------
    async def http_connect(self, f: http.HTTPFlow) -> None:  # type: ignore[override]
        if self.validator and await self.authenticate(f):
            self.authenticated[f.client_conn] = f.metadata["proxyauth"]

    async def requestheaders(self, f: http.HTTPFlow) -> None:  # type: ignore[override]
        if not self.validator:
            return
        if f.client_conn in self.authenticated:
            f.metadata["proxyauth"] = self.authenticated[f.client_conn]
        elif not f.is_replay:
            await self.authenticate(f)

    async def authenticate(self, f: http.HTTPFlow) -> bool:
        """As ProxyAuth.authenticate_http, the password checked in the pool."""
        is_proxy = proxyauth.is_http_proxy(f)
        header = proxyauth.http_auth_header(is_proxy)
        credentials = _credentials(f.request.headers.get(header, ""))
        if credentials is not None and await self.verify(_address(f), *credentials):
            f.metadata["proxyauth"] = credentials
            del f.request.headers[header]
            return True
        f.response = proxyauth.make_auth_required_response(is_proxy)
        return False

    async def verify(self, address: str, username: str, password: str) -> bool:
        cached = self.cached
        if cached is None:
            return False
        if cached.remembered(username, password):
            return True
        if not self.limiter.allowed(address) or self._waiting >= MAX_WAITING:
            self.limiter.failed(address, username, checked=False)
            return False
        self._waiting += 1
        self.limiter.checking(address)
        try:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(self._pool, cached.check, username, password)
        except Exception:  # an unreachable LDAP server, say: refused, never let through
            logger.exception("socialguard: a sign-in check failed")
            ok = False
        finally:
            self._waiting -= 1
            self.limiter.checked(address)
        if not ok:
            self.limiter.failed(address, username, checked=True)
        return ok

    # -- following the file, and recording bursts ------------------------------------------
    def running(self) -> None:
        self._tasks.append(asyncio.create_task(self._follow(), name="socialguard-signin"))

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                self._record_bursts()
                if self.password_file is not None:
                    outcome = await asyncio.to_thread(self.password_file.poll)
                    if outcome is not None:
                        self._file_changed(outcome)
            except Exception:
                logger.exception("socialguard: following sign-in failed once; it goes on")

    def _file_changed(self, outcome: str) -> None:
        if self.password_file is None:
            return
        path = str(self.password_file.path)
        if outcome == "reloaded":
            if self.cached is not None:
                self.cached.forget()
            users = len(self.password_file.users.users)
            self._record(
                RELOADED,
                {
                    "file": path,
                    "users": users,
                    "detail": f"the password file changed: {users} users; every remembered "
                    "sign-in is forgotten",
                },
            )
        else:
            self._record(
                REJECTED,
                {
                    "file": path,
                    "problem": outcome,
                    "detail": f"{path}: {outcome} — the last good password file stays in force",
                },
            )

    def _record_bursts(self, *, everything: bool = False) -> None:
        for address, burst in self.limiter.due(everything=everything):
            self._record(FAILED, failed_fields(address, burst, self.limiter))

    def _record(self, event: str, fields: dict[str, Any]) -> None:
        if self._audit is None:
            return
        try:
            self._audit.record(event, fields)
        except Exception:
            logger.exception("socialguard: recording %s failed", event)

    def done(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._record_bursts(everything=True)
        self._pool.shutdown(wait=False, cancel_futures=True)


def _lower_priority() -> None:
    """Run this worker thread below the event loop (Linux: a thread's own nice value)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)


def _credentials(value: str) -> tuple[str, str] | None:
    try:
        _scheme, username, password = proxyauth.parse_http_basic_auth(value)
    except (ValueError, binascii.Error):
        return None
    return username, password


def _address(f: http.HTTPFlow) -> str:
    host = str(f.client_conn.peername[0]) if f.client_conn.peername else ""
    return host.removeprefix("::ffff:")
