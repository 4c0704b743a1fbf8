"""The htpasswd file behind proxy sign-in: read, changed under a lock and written atomically.

bcrypt only (mitmproxy refuses Apache's $apr1$). The running proxy notices a replaced file by
itself, so every change is one rename: it never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import bcrypt

DEFAULT_HTPASSWD = Path("/etc/socialguard/htpasswd")
GROUP = "socialguard"
MODE = 0o640
# Each check costs about 55 ms of CPU at cost 10; the proxy remembers a verified sign-in for a
# while (proxy.signin), so a higher cost would mostly slow the first request of each person.
ROUNDS = 10
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD_BYTES = 72  # bcrypt reads no further


class HtpasswdError(Exception):
    """A plain message for the user: the file, what is wrong, the fix."""


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise HtpasswdError(
            f"{name!r} is not a user name socialguard accepts: letters, digits and . _ @ + - "
            "(up to 64, starting with a letter or digit), e.g. j.smith"
        )


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise HtpasswdError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise HtpasswdError(f"the password is too long: at most {MAX_PASSWORD_BYTES} bytes")
    if any(c in password for c in "\r\n\0"):
        raise HtpasswdError("the password may not hold a line break or NUL")


def parse(text: str, source: str) -> dict[str, str]:
    """name -> hash, in file order; a line that is not `name:hash` is refused with its number."""
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, hashed = line.partition(":")
        if not sep or not name or not hashed:
            raise HtpasswdError(f"{source}:{number}: not a `name:hash` line — fix or remove it")
        users[name] = hashed
    return users


def render(users: dict[str, str]) -> str:
    return "".join(f"{name}:{hashed}\n" for name, hashed in users.items())


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=ROUNDS)).decode()


def read(path: Path) -> dict[str, str]:
    """The users in `path`; none when it does not exist yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise HtpasswdError(f"{path}: cannot read it: {error.strerror}") from None
    return parse(text, str(path))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One change at a time: an exclusive lock on a file beside `path`."""
    lock = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise HtpasswdError(f"{path}: cannot lock it ({lock}: {error.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write(path: Path, users: dict[str, str]) -> None:
    """Replace `path` whole: written beside it (mode 0640, group socialguard when that group
    exists), synced, renamed over it."""
    try:
        group = grp.getgrnam(GROUP).gr_gid
    except KeyError:
        group = -1
    if not path.parent.is_dir():
        raise HtpasswdError(f"{path}: its folder {path.parent} does not exist — create it first")
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), MODE)
            if group != -1:
                os.fchown(stream.fileno(), -1, group)
            stream.write(render(users))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise HtpasswdError(f"{path}: cannot write it: {error.strerror}") from None
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
