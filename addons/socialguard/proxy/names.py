"""The names a connection or request travels under, gathered in one place.

A request may name its destination four ways: the CONNECT line, the TLS SNI, the request's own
host (absolute-form URL or HTTP/2 :authority) and the Host header. Each is a way to ask for a
site, so every decision and every check (the fast path, the signup guard) reads all of them
from here rather than from its own list.
"""

from __future__ import annotations

from typing import Any

from mitmproxy import connection, http


def request_names(
    request: http.Request, client: connection.Client, connect_host: str | None
) -> list[str]:
    """Every name one HTTP request travels under, the request's own Host (HTTP/2 :authority)
    first, so a block page names what was asked; empty names left out."""
    names = [request.host_header or "", request.host, client.sni or "", connect_host or ""]
    return [name for name in names if name]


def tunnel_names(address: str, sni_names: list[str]) -> list[str]:
    """The names a TLS tunnel travels under: the CONNECT (or original destination) address and
    every server_name of its ClientHello."""
    return [address, *sni_names]


def username(metadata: dict[str, Any] | None) -> str | None:
    """The proxy-auth user name; the password beside it is never kept or logged."""
    auth = metadata.get("proxyauth") if metadata else None
    if isinstance(auth, tuple) and auth and isinstance(auth[0], str) and auth[0]:
        return auth[0]
    return None
