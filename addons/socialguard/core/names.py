"""Names as people type them: a service as "Facebook" or "facebook", an exemption id in any
case, and "did you mean" for a near miss. Pure: the command line turns a miss into a message.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

from socialguard.core.catalog import Catalog

_SQUEEZE = re.compile(r"[^a-z0-9]+")


class UnknownNameError(LookupError):
    """A name that matches nothing; the message names the near misses, if any."""


def _key(text: str) -> str:
    """`X (Twitter)` → `xtwitter`, `LinkedIn` → `linkedin`: case and punctuation do not count."""
    return _SQUEEZE.sub("", text.lower())


def did_you_mean(text: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """The candidates closest to `text` (case ignored), best first."""
    by_key: dict[str, str] = {}
    for candidate in candidates:
        by_key.setdefault(candidate.lower(), candidate)
    close = difflib.get_close_matches(text.lower(), list(by_key), n=limit, cutoff=0.7)
    return [by_key[c] for c in close]


def _resolve(text: str, names: Mapping[str, str], what: str, hint: str) -> str:
    """`names` maps each accepted spelling to what it stands for."""
    wanted = text.strip()
    exact = names.get(wanted)
    if exact is not None:
        return exact
    folded: dict[str, set[str]] = {}
    for spelling, target in names.items():
        folded.setdefault(_key(spelling), set()).add(target)
    found = folded.get(_key(wanted), set())
    if len(found) == 1:
        return next(iter(found))
    if len(found) > 1:
        raise UnknownNameError(f"{what} {wanted!r} could be any of {', '.join(sorted(found))}")
    close = did_you_mean(wanted, names)
    suggestion = f" — did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownNameError(f"unknown {what} {wanted!r}{suggestion} ({hint})")


def resolve_service(text: str, catalog: Catalog) -> str:
    """A catalogue service id from its id or its name, in any case ("Facebook" → facebook)."""
    names: dict[str, str] = {}
    for service in catalog.services.values():
        names.setdefault(service.name, service.id)
    for service_id in catalog.services:
        names[service_id] = service_id  # an id always wins over another service's name
    return _resolve(text, names, "service", "see 'socialguard catalog list'")


def resolve_category(text: str, categories: Iterable[str]) -> str:
    """A category in any case, with spaces for hyphens ("Social networking")."""
    names = {c: c for c in categories}
    return _resolve(text, names, "category", f"known: {', '.join(sorted(names))}")


def resolve_id(text: str, ids: Iterable[str], what: str = "exemption") -> str:
    """An id such as EX-2026-001 in any case; a near miss is suggested."""
    names = {i: i for i in ids}
    wanted = text.strip()
    for ident in names:
        if ident.lower() == wanted.lower():
            return ident
    close = did_you_mean(wanted, names)
    if close:
        hint = f"did you mean {' or '.join(close)}?"
    else:
        hint = f"ids in the file: {', '.join(names) or 'none'}"
    raise UnknownNameError(
        f"no {what} with id {wanted!r} ({hint}) — see 'socialguard exemptions list --all'"
    )
