"""policy.yaml's `admin:` (the Practice Manager's page) and `digest:` (its weekly e-mail).

Pure: checks already-loaded YAML values and reports each bad one with its line; no I/O.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from socialguard.core.problems import Problems

ADMIN_DEFAULTS: dict[str, Any] = {
    "listen": "127.0.0.1:8090",
    "public_url": None,
    "htpasswd": None,
    "session_minutes": 480,
    "tls_cert": None,
    "tls_key": None,
    "audit_path": None,
    "request_days": 14,
}
DIGEST_DEFAULTS: dict[str, Any] = {
    "smtp_host": None,
    "smtp_port": None,
    "security": "starttls",
    "username": None,
    "password_file": None,
    "from": None,
    "to": [],
    "weekday": "mon",
    "time": "08:00",
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SECURITIES = {"starttls": 587, "tls": 465, "none": 25}
_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")
_ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: addresses only this machine can reach."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminSettings:
    """How `socialguard admin` serves the page: where, to whom, for how long a sign-in lasts."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 8090
    public_url: str | None = None
    htpasswd: str | None = None
    session_minutes: float = 480
    tls_cert: str | None = None
    tls_key: str | None = None
    audit_path: str | None = None
    request_days: int = 14


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestSettings:
    """Where and when the weekly e-mail goes; `smtp_host` None means no digest is set up."""

    smtp_host: str | None = None
    smtp_port: int = 587
    security: str = "starttls"
    username: str | None = None
    password_file: str | None = None
    sender: str | None = None
    to: tuple[str, ...] = ()
    weekday: int = 0
    time: dt.time = dt.time(8, 0)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def parse_admin(
    value: dict[str, Any], where: Callable[[str], int], problems: Problems
) -> AdminSettings:
    """The admin: section over its defaults; a bad value is reported and its default kept."""
    merged = {**ADMIN_DEFAULTS, **value}

    def bad(key: str, message: str) -> None:
        problems.add(where(key), f"admin.{key}: {message}")
        merged[key] = ADMIN_DEFAULTS[key]

    host, port = "127.0.0.1", 8090
    listen = str(merged["listen"])
    h, sep, p = listen.rpartition(":")
    if not sep or not p.isdigit() or not 0 < int(p) < 65536:
        bad("listen", f"{listen!r} is not HOST:PORT (for example 127.0.0.1:8090)")
    else:
        host, port = h.strip("[]") or "0.0.0.0", int(p)  # noqa: S104 - IT's choice
    url = merged["public_url"]
    if url is not None and (not _text(url) or not re.match(r"https?://[^/\s]+", str(url))):
        bad("public_url", "must be how staff devices reach the page, e.g. https://gateway:8090")
    for key in ("htpasswd", "tls_cert", "tls_key", "audit_path"):
        if merged[key] is not None and not _text(merged[key]):
            bad(key, "must be a file path")
    if (merged["tls_cert"] is None) != (merged["tls_key"] is None):
        problems.add(
            where("tls_cert" if merged["tls_cert"] is None else "tls_key"),
            "admin.tls_cert and admin.tls_key: give both (the certificate IT names and its key)",
        )
        merged["tls_cert"] = merged["tls_key"] = None
    minutes = merged["session_minutes"]
    if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not 0 < minutes <= 1440:
        bad("session_minutes", "must be a number of minutes up to 1440 (a day), e.g. 480")
    days = merged["request_days"]
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 90:
        bad("request_days", "must be a whole number of days from 1 to 90, e.g. 14")
    return AdminSettings(
        listen_host=host,
        listen_port=port,
        public_url=str(merged["public_url"]).rstrip("/") if merged["public_url"] else None,
        htpasswd=merged["htpasswd"],
        session_minutes=float(merged["session_minutes"]),
        tls_cert=merged["tls_cert"],
        tls_key=merged["tls_key"],
        audit_path=merged["audit_path"],
        request_days=int(merged["request_days"]),
    )


def parse_digest(
    value: dict[str, Any], where: Callable[[str], int], problems: Problems
) -> DigestSettings:
    """The digest: section; without smtp_host there is no digest to send."""
    merged = {**DIGEST_DEFAULTS, **value}

    def bad(key: str, message: str) -> None:
        problems.add(where(key), f"digest.{key}: {message}")
        merged[key] = DIGEST_DEFAULTS[key]

    if merged["smtp_host"] is not None and not _text(merged["smtp_host"]):
        bad("smtp_host", "must be the mail server's name, e.g. smtp.nhs.net")
    security = merged["security"]
    if security not in SECURITIES:
        bad("security", "must be 'starttls' (port 587), 'tls' (port 465) or 'none' (loopback only)")
        security = "starttls"
    host = merged["smtp_host"]
    if security == "none" and host is not None and not is_loopback(str(host)):
        bad("security", "'none' sends the password and the digest in clear: loopback only")
        security = "starttls"
    port = merged["smtp_port"]
    if port is None:
        port = SECURITIES[security]
    elif isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        bad("smtp_port", "must be a port number, e.g. 587")
        port = SECURITIES[security]
    for key in ("username", "password_file"):
        if merged[key] is not None and not _text(merged[key]):
            bad(key, "must be text")
    if (merged["username"] is None) != (merged["password_file"] is None):
        problems.add(
            where("username"),
            "digest.username and digest.password_file: give both, or neither for a server "
            "that takes mail without signing in",
        )
    to = merged["to"]
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not all(
        isinstance(a, str) and _ADDRESS.fullmatch(a) for a in to
    ):
        bad("to", "must be a list of e-mail addresses, e.g. [practice.manager@nhs.net]")
        to = []
    sender = merged["from"]
    if sender is not None and not (isinstance(sender, str) and _ADDRESS.search(sender)):
        bad("from", "must be an e-mail address, e.g. socialguard@practice.nhs.uk")
        sender = None
    if host is not None and (not to or sender is None):
        problems.add(where("smtp_host"), "digest: with smtp_host, give from: and to: as well")
    weekday = str(merged["weekday"]).lower()[:3]
    if weekday not in WEEKDAYS:
        bad("weekday", "must be a day of the week, e.g. mon")
        weekday = "mon"
    time_match = _TIME.fullmatch(str(merged["time"]))
    if time_match is None:
        bad("time", "must be a time like '08:00' (quote it: YAML reads 08:00 as a number)")
        time_match = _TIME.fullmatch("08:00")
    assert time_match is not None  # noqa: S101 - the default always matches
    return DigestSettings(
        smtp_host=str(host) if host else None,
        smtp_port=int(port),
        security=str(security),
        username=merged["username"],
        password_file=merged["password_file"],
        sender=sender,
        to=tuple(to),
        weekday=WEEKDAYS.index(weekday),
        time=dt.time(int(time_match[1]), int(time_match[2])),
    )
