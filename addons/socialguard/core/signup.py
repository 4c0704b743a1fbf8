"""The signup guard's question: does a request to a listed site carry a work e-mail address?

The policy forbids registering on social media or shopping sites with the work address. Only
the hosts IT lists (`signup_guard.hosts`) are inspected, and only the domain of an address is
ever kept: the address itself is personal data the audit log does not need.
"""

from __future__ import annotations

import contextlib
import json
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

from socialguard.core.hosts import suffixes

# Forms are small; a large body is an upload, and its first megabyte holds any form fields.
MAX_INSPECTED = 1 << 20
# The domain after an `@`, bounded like DNS labels so that no input makes the match slow.
_DOMAIN_AFTER_AT = re.compile(r"[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,126}", re.IGNORECASE)
_LOCAL_PART_END = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+'-")


def is_guarded(host: str, hosts: tuple[str, ...]) -> bool:
    """Whether a normalised host is, or is under, one of the listed sign-up hosts."""
    listed = {h.lower().strip(".") for h in hosts}
    return any(s in listed for s in suffixes(host))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _texts(body: bytes, query: str, content_type: str) -> Iterator[str]:
    """Every readable form of the fields: as sent, URL-decoded, and JSON strings unescaped."""
    text = body[:MAX_INSPECTED].decode("utf-8", errors="replace")
    yield text
    yield urllib.parse.unquote_plus(text)
    yield urllib.parse.unquote_plus(query)
    if "json" in content_type.lower():
        # Not JSON after all: the plain text above was still searched.
        with contextlib.suppress(ValueError):
            yield from _strings(json.loads(text))


def work_address_domain(
    body: bytes, query: str, content_type: str, email_domains: tuple[str, ...]
) -> str | None:
    """The work e-mail domain an address in the request belongs to, or None."""
    if not email_domains:
        return None
    work = {d.lower().lstrip("@").rstrip(".") for d in email_domains}
    for text in _texts(body, query, content_type):
        for domain in _address_domains(text):
            for suffix in suffixes(domain.lower()):
                if suffix in work:
                    return suffix
    return None


def _address_domains(text: str) -> Iterator[str]:
    """The domain of each e-mail address in `text`: linear in its length, whatever it holds."""
    at = text.find("@")
    while at != -1:
        if at > 0 and text[at - 1] in _LOCAL_PART_END:
            match = _DOMAIN_AFTER_AT.match(text, at + 1)
            if match:
                yield match[0]
        at = text.find("@", at + 1)
