"""The Host names the page answers to, and the middleware that refuses every other one.

DNS rebinding: a web site the Practice Manager's browser opens elsewhere can point its own name
at the gateway's address (or at 127.0.0.1) and then read this page as if it were its own. The
browser still sends that foreign name in Host, so the page answers only to the names it is
served as: the host of admin.public_url, the admin.listen address, and loopback names when it
listens on loopback. An IP address in Host is accepted when the page listens on every address
(0.0.0.0 or ::): a rebinding site can only send its own name, never an address literal.

A few lines of our own rather than Starlette's TrustedHostMiddleware: that one takes a list of
fixed names (no rule for "any address literal" or "any loopback address"), compares the text
as sent (no trailing dot or IDNA normalising: here core.hosts reads Host as the proxy does), and
answers "Invalid host header", which tells the Practice Manager nothing. Reads no file and no
setting: it is given the names at start.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from socialguard.core.admin_settings import is_loopback
from socialguard.core.hosts import HostError, HostKind, normalise_host

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
EVERY_ADDRESS = frozenset({"0.0.0.0", "::"})  # noqa: S104 - compared with, never bound


def _normal(raw: str) -> str | None:
    """The Host's name as core.hosts writes it (lower case, no port, no dot at the end)."""
    try:
        return normalise_host(raw).name
    except HostError:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class PageNames:
    """The names (normalised, without port) under which the page is served."""

    names: frozenset[str]
    any_address: bool  # listening on every address: an address literal is one of ours
    loopback: bool  # listening on loopback: every loopback address is one of ours
    public_url: str | None = None

    def allows(self, header: str | None) -> bool:
        """Whether a request with this Host header is for this page."""
        if not header:
            return False
        try:
            host = normalise_host(header)
        except HostError:
            return False
        if host.name in self.names:
            return True
        if host.kind is HostKind.IP:
            return self.any_address or (self.loopback and is_loopback(host.name))
        return False

    def refusal(self) -> str:
        """The short page a refused browser shows: what to do, for the manager and for IT."""
        where = f" ({self.public_url}/)" if self.public_url else ""
        return (
            "Wrong address for this page\n\n"
            "This page was opened by a name it does not answer to, so nothing was shown.\n"
            f"Open the Practice Manager's page at the address IT gave you{where}.\n\n"
            "For IT: the page answers only to the host of admin.public_url, its admin.listen "
            "address and, on loopback, localhost. If people reach it by another name, set "
            "admin.public_url in policy.yaml to that address and restart the page "
            "(systemctl restart socialguard-admin).\n"
        )


def page_names(listen_host: str, public_url: str | None) -> PageNames:
    """The names for a page listening on `listen_host` and reached at `public_url` (if set)."""
    names: set[str] = set()
    if public_url:
        host = urllib.parse.urlsplit(public_url).hostname
        named = _normal(host) if host else None
        if named:
            names.add(named)
    listen = listen_host.strip("[]")
    any_address = listen in EVERY_ADDRESS or not listen
    loopback = any_address or is_loopback(listen)
    if not any_address:
        named = _normal(listen)
        if named:
            names.add(named)
    if loopback:
        names |= LOOPBACK_NAMES
    return PageNames(
        names=frozenset(names), any_address=any_address, loopback=loopback, public_url=public_url
    )


class HostCheck:
    """Refuses, with a plain 400 page, every HTTP request whose Host is not one of the page's."""

    def __init__(self, app: ASGIApp, names: PageNames) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only HTTP: the page has no WebSocket route, and Starlette refuses those by itself.
        hosts = Headers(scope=scope).getlist("host") if scope["type"] == "http" else []
        if scope["type"] != "http" or (len(hosts) == 1 and self.names.allows(hosts[0])):
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse(self.names.refusal(), status_code=400)
        await response(scope, receive, send)
