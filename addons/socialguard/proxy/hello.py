"""A tunnel's first bytes, read by socialguard itself: a complete TLS ClientHello within a
bound, and every server_name it carries.

mitmproxy's parsed `sni` drops a name it thinks invalid (`www.facebook.com!`, a 64-character
label) and so turns it into "no SNI", which would let the tunnel through on the CONNECT line
alone. Here every name in the extension is returned as sent, for the core to normalise or
refuse. A ClientHello is a few hundred bytes (a few KiB with post-quantum key shares); one
that is not complete within MAX_HELLO_BYTES (64 KiB) is refused, never buffered further.
"""

from __future__ import annotations

from mitmproxy.proxy.layers.tls import parse_client_hello

MAX_HELLO_BYTES = 64 * 1024
_SERVER_NAME = 0  # the extension type, and the only name type (host_name) ever defined
_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01
_HEADERS = 9  # record header (5) and handshake header (4)


class HelloError(ValueError):
    """First bytes that are not a ClientHello socialguard can decide; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def server_names(data: bytes) -> list[str] | None:
    """Every server_name of the ClientHello at the start of `data`, as sent (None: the hello
    is not complete yet). Raises HelloError for anything else."""
    if len(data) >= _HEADERS and data[0] == _HANDSHAKE and data[5] == _CLIENT_HELLO:
        claimed = int.from_bytes(data[6:9], "big") + 4
        if claimed > MAX_HELLO_BYTES:
            raise HelloError(f"the ClientHello claims {claimed} bytes, more than 64 KiB")
    try:
        hello = parse_client_hello(data)
    except Exception as error:  # ValueError, and whatever the parser meets in odd bytes
        raise HelloError("unreadable TLS ClientHello") from error
    if hello is None:
        if len(data) >= MAX_HELLO_BYTES:
            raise HelloError("no complete ClientHello within the first 64 KiB")
        return None
    names: list[str] = []
    for kind, body in hello.extensions:
        if kind == _SERVER_NAME:
            names.extend(_names_in(body))
    return names


def _names_in(body: bytes) -> list[str]:
    """The names of one server_name extension (RFC 6066 §3), strictly."""
    if len(body) < 2 or int.from_bytes(body[:2], "big") != len(body) - 2:
        raise HelloError("a malformed server_name extension")
    names = []
    at = 2
    while at < len(body):
        if at + 3 > len(body):
            raise HelloError("a malformed server_name extension")
        kind = body[at]
        length = int.from_bytes(body[at + 1 : at + 3], "big")
        raw = body[at + 3 : at + 3 + length]
        if len(raw) != length:
            raise HelloError("a malformed server_name extension")
        if kind != _SERVER_NAME:
            raise HelloError(f"a server_name of unknown type {kind}")
        try:
            names.append(raw.decode("ascii"))
        except UnicodeDecodeError:
            raise HelloError("a server name that is not ASCII") from None
        at += 3 + length
    if not names:
        raise HelloError("an empty server_name extension")
    return names
