"""Normalise a host name from the wire into the one form the catalogue is keyed by.

Pure: no I/O, no mitmproxy. Anything a browser would not send is rejected with a reason,
never guessed at: a name we cannot read is not a name we can allow by mistake.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63

# Letters, digits, hyphen and underscore (real hosts such as `_dmarc` or CDN names use it).
_ASCII_HOST = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_PORT = re.compile(r"[0-9]{1,5}")
# The common case, checked in one step on the lower-cased ASCII text with any trailing dot
# removed: labels of 1-63 letters, digits, `_` or `-`, the last one not all digits (so it cannot
# be an IP address). Possessive, so a long host costs one pass and no backtracking.
_PLAIN_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}+\.)*+(?=[0-9]*+[a-z_-])[a-z0-9_-]{1,63}+")


class HostError(ValueError):
    """A host string that cannot be a host name; `reason` says why in plain words."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"{raw[:80]!r}: {reason}")
        self.raw = raw
        self.reason = reason


class HostKind(enum.StrEnum):
    """Whether a destination is a name or an IP literal (which no catalogue can name)."""

    NAME = "name"
    IP = "ip"


@dataclass(frozen=True, slots=True)
class Host:
    """A normalised destination: lower case, no port, no trailing dot, IDNA A-labels."""

    name: str
    kind: HostKind = HostKind.NAME


def _split_port(raw: str) -> str:
    """Strip a `:port` suffix, including from a bracketed IPv6 literal."""
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0:
            raise HostError(raw, "unterminated IPv6 literal")
        rest = raw[end + 1 :]
        if rest and not (rest.startswith(":") and _PORT.fullmatch(rest[1:])):
            raise HostError(raw, "text after an IPv6 literal is not a port")
        return raw[1:end]
    if raw.count(":") == 1:
        name, port = raw.split(":")
        if not _PORT.fullmatch(port):
            raise HostError(raw, "the port is not a number")
        return name
    return raw


def unmapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> IPAddress:
    """`::ffff:10.0.0.5` is 10.0.0.5: the one place an IPv4-mapped address is unwrapped."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _as_ip(text: str) -> str | None:
    try:
        return str(unmapped(ipaddress.ip_address(text)))
    except ValueError:
        return None


def plain_name(raw: str) -> str | None:
    """The normal form of a name that needs no careful reading (ASCII, no port, no IP), else None.

    `decide()` calls this first so the common case costs one regex pass and no Host object;
    it accepts only what `normalise_host` would accept, with the same result.
    """
    if len(raw) > MAX_HOST_LENGTH or not raw.isascii():
        return None
    name = raw.lower()
    if name.endswith("."):
        name = name[:-1]
    return name if _PLAIN_NAME.fullmatch(name) else None


def normalise_host(raw: str) -> Host:
    """Return the canonical form of `raw` (a Host header, SNI, CONNECT target or URL host)."""
    if not raw:
        raise HostError(raw, "empty host")
    if len(raw) > MAX_HOST_LENGTH + 8:
        raise HostError(raw, f"longer than {MAX_HOST_LENGTH} characters")
    name = plain_name(raw)
    if name is not None:
        return Host(name)
    text = _split_port(raw.strip())
    ip = _as_ip(text)
    if ip is not None:
        return Host(ip, HostKind.IP)
    name = text.lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise HostError(raw, "empty host")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as error:
            raise HostError(raw, f"not a valid international name ({error})") from None
    if not _ASCII_HOST.fullmatch(name):
        raise HostError(raw, "contains characters that are not allowed in a host name")
    if len(name) > MAX_HOST_LENGTH:
        raise HostError(raw, f"longer than {MAX_HOST_LENGTH} characters")
    if any(len(label) > MAX_LABEL_LENGTH for label in name.split(".")):
        raise HostError(raw, f"a label is longer than {MAX_LABEL_LENGTH} characters")
    if name.replace(".", "").isdigit():
        # `127.1` or `2130706433`: a browser reads these as IP addresses, so must we.
        raise HostError(raw, "a numeric name that is not a valid IP address")
    return Host(name)


def suffixes(name: str) -> list[str]:
    """`a.b.c` → [`a.b.c`, `b.c`, `c`]: most specific first, one entry per label."""
    out = [name]
    index = name.find(".")
    while index >= 0:
        out.append(name[index + 1 :])
        index = name.find(".", index + 1)
    return out
