"""Keeps browsers on TCP: the HTTP/3 alternatives of every relayed Alt-Svc header are removed.

A browser told "h3 on UDP 443" would try QUIC straight to the site, around the proxy; without
the advertisement it stays on TCP, where every connection is decided.
"""

from __future__ import annotations

import logging
import re

from mitmproxy import http

logger = logging.getLogger("socialguard")

# One Alt-Svc alternative: `h3=":443"; ma=86400`. Commas inside quoted strings do not split.
_ALT_SVC_ITEM = re.compile(r'(?:[^,"]|"[^"]*")+')
# HTTP/3 and the QUIC drafts that preceded it: `h3`, `h3-29`, `h3-Q050`, `quic`, `hq-…`.
_QUIC_PROTOCOLS = ("h3", "quic", "hq")


def strip_quic_alt_svc(value: str) -> str | None:
    """An Alt-Svc value without its HTTP/3 alternatives (None if nothing is left)."""
    kept = []
    for item in _ALT_SVC_ITEM.findall(value):
        alternative = item.strip()
        protocol = alternative.split("=", 1)[0].strip().lower()
        if alternative and not protocol.startswith(_QUIC_PROTOCOLS):
            kept.append(alternative)
    return ", ".join(kept) or None


class AltSvc:
    """The addon: each response socialguard relays (intercepted ones are all our own)."""

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is None or flow.error or not flow.live:
            return
        try:
            headers = flow.response.headers
            values = headers.get_all("alt-svc")
            if values:
                kept = [v for v in map(strip_quic_alt_svc, values) if v]
                if kept != values:
                    headers.set_all("alt-svc", kept)
        except Exception:
            logger.exception("socialguard: Alt-Svc rewrite failed; header removed")
            flow.response.headers.pop("alt-svc", None)
