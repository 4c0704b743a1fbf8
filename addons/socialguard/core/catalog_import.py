"""Turn a public block list into an extra catalogue file: hosts files, plain domain lists and
adblock-style `||domain^` rules.

Pure: takes the list's lines and the loaded catalogue, returns what was kept and what was
skipped and why, and renders the YAML text. It never reads or writes a file and never prints:
the command line does that. What the catalogue already covers, what never_block protects and
what is shared infrastructure is skipped, so an imported list can never unblock or break them.
"""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import idna

from socialguard.core.catalog import Catalog, is_domain
from socialguard.core.hosts import suffixes

EXAMPLES_PER_REASON = 5
# Names hosts files map for the machine itself, never a site on the internet.
_LOCAL_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
    }
)
# Adblock modifiers that do not narrow a rule: the rule still means "this domain, always".
_HARMLESS_MODIFIERS = frozenset({"important", "all", "document", "doc"})
_ADBLOCK_RULE = re.compile(r"\|\|?([^/^$|]+)\^?\|?(?:\$(.*))?")


class ListFormat(enum.StrEnum):
    """The list formats `catalog import` reads."""

    HOSTS = "hosts"
    DOMAINS = "domains"
    ADBLOCK = "adblock"


class Skip(enum.StrEnum):
    """Why a line or a name was not imported. Shown to the user with a count each."""

    COMMENT = "comment"
    WILDCARD = "wildcard"
    IP = "IP address"
    LOCAL = "local name (localhost and the like)"
    INVALID = "not a valid domain name"
    UNSUPPORTED = "rule that is not a plain domain (path, regex or narrowing option)"
    EXCEPTION = "exception rule (@@)"
    DUPLICATE = "duplicate in the list"
    REDUNDANT = "already covered by a parent domain in the list"
    NEVER_BLOCK = "at or under a never-block domain"
    ABOVE_NEVER_BLOCK = "would cover a never-block domain"
    SHARED = "shared infrastructure left out on purpose"
    CATALOGUED = "already in the catalogue"


@dataclass(slots=True, kw_only=True)
class ImportResult:
    """The kept domains (sorted) and, for every reason, how many were skipped and examples."""

    format: ListFormat
    lines: int = 0
    domains: list[str] = field(default_factory=list)
    skipped: Counter[Skip] = field(default_factory=Counter)
    examples: dict[Skip, list[tuple[int, str]]] = field(default_factory=dict)

    def skip(self, reason: Skip, line: int, text: str) -> None:
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES_PER_REASON:
            shown.append((line, text[:120]))


def detect_format(lines: Iterable[str]) -> ListFormat:
    """Guess the format from the first lines that are not comments."""
    seen = 0
    for raw in lines:
        line = raw.strip()
        if not line or line[0] in "#!;[":
            continue
        if line.startswith(("||", "|", "@@")):
            return ListFormat.ADBLOCK
        first = line.split(None, 1)[0]
        if len(line.split()) > 1 and _is_ip(first):
            return ListFormat.HOSTS
        seen += 1
        if seen >= 20:
            break
    return ListFormat.DOMAINS


def _is_ip(text: str) -> bool:
    if not text or not (text[0].isdigit() or ":" in text):
        return False
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _name(token: str, line_no: int, result: ImportResult) -> str | None:
    """One name from a list, normalised, or None after recording why it was skipped."""
    name = token.strip().lower().rstrip(".")
    if is_domain(name):
        if name in _LOCAL_NAMES:
            result.skip(Skip.LOCAL, line_no, token)
            return None
        if name.replace(".", "").isdigit():
            result.skip(Skip.IP, line_no, token)
            return None
        return name
    if "*" in name:
        result.skip(Skip.WILDCARD, line_no, token)
        return None
    if _is_ip(name):
        result.skip(Skip.IP, line_no, token)
        return None
    if name in _LOCAL_NAMES or "." not in name:
        result.skip(Skip.LOCAL if name in _LOCAL_NAMES else Skip.INVALID, line_no, token)
        return None
    if not name.isascii():
        try:
            ascii_name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError:
            result.skip(Skip.INVALID, line_no, token)
            return None
        if is_domain(ascii_name):
            return ascii_name
    result.skip(Skip.INVALID, line_no, token)
    return None


def _hosts_line(line: str, line_no: int, result: ImportResult, out: list[str]) -> None:
    text = line.split("#", 1)[0]
    fields = text.split()
    if len(fields) < 2 or not _is_ip(fields[0]):
        # A bare name in a hosts file is a common hand edit: take it as a domain.
        if len(fields) == 1 and not _is_ip(fields[0]):
            name = _name(fields[0], line_no, result)
            if name is not None:
                out.append(name)
            return
        result.skip(Skip.IP if fields and _is_ip(fields[0]) else Skip.INVALID, line_no, line)
        return
    for token in fields[1:]:
        name = _name(token, line_no, result)
        if name is not None:
            out.append(name)


def _adblock_line(line: str, line_no: int, result: ImportResult, out: list[str]) -> None:
    if line.startswith("@@"):
        result.skip(Skip.EXCEPTION, line_no, line)
        return
    if not line.startswith("|"):
        if "/" in line or "^" in line or "$" in line or " " in line:
            result.skip(Skip.UNSUPPORTED, line_no, line)
            return
        name = _name(line, line_no, result)  # AdGuard DNS lists allow a bare domain
        if name is not None:
            out.append(name)
        return
    match = _ADBLOCK_RULE.fullmatch(line)
    if match is None:
        result.skip(Skip.UNSUPPORTED, line_no, line)
        return
    modifiers = match.group(2)
    if modifiers and not set(modifiers.split(",")) <= _HARMLESS_MODIFIERS:
        result.skip(Skip.UNSUPPORTED, line_no, line)
        return
    name = _name(match.group(1), line_no, result)
    if name is not None:
        out.append(name)


def _domains_line(line: str, line_no: int, result: ImportResult, out: list[str]) -> None:
    text = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
    if " " in text or "\t" in text:
        result.skip(Skip.INVALID, line_no, line)
        return
    name = _name(text, line_no, result)
    if name is not None:
        out.append(name)


_PARSERS = {
    ListFormat.HOSTS: _hosts_line,
    ListFormat.ADBLOCK: _adblock_line,
    ListFormat.DOMAINS: _domains_line,
}


def parse_list(lines: Iterable[str], list_format: ListFormat) -> tuple[list[str], ImportResult]:
    """Every name the list holds, in order (repeats included), and what was skipped."""
    result = ImportResult(format=list_format)
    parse = _PARSERS[list_format]
    names: list[str] = []
    line_no = 0
    for line_no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line[0] in "#!;[" and not line.startswith("[::"):
            result.skip(Skip.COMMENT, line_no, line)
            continue
        # The common case in every format, checked first: a plain name on its own line.
        if (
            list_format is ListFormat.DOMAINS
            and line[-1].isalpha()
            and is_domain(line)
            and line not in _LOCAL_NAMES
        ):
            names.append(line)
            continue
        parse(line, line_no, result, names)
    result.lines = line_no
    return names, result


def import_list(
    lines: Iterable[str],
    list_format: ListFormat,
    catalog: Catalog | None = None,
) -> ImportResult:
    """Parse a list and keep only the domains that add something to `catalog`, sorted.

    Skipped: repeats; names under another name of the list; names at, under or above a
    never-block domain; shared infrastructure (and anything above it); names the catalogue
    already covers, so an import never moves a catalogued host to another service.
    """
    names, result = parse_list(lines, list_format)
    unique = set(names)
    duplicates = len(names) - len(unique)
    if duplicates:
        result.skipped[Skip.DUPLICATE] += duplicates
    never_block = catalog.never_block if catalog else frozenset()
    above_never = {s for d in never_block for s in suffixes(d)[1:]}
    shared = {s for d in (catalog.left_out if catalog else ()) for s in suffixes(d)}
    catalogued = catalog.origin if catalog else {}
    kept: list[str] = []
    kept_set: set[str] = set()
    # Parents before children, so a child is redundant only under a parent that was kept.
    for name in sorted(unique, key=lambda n: (n.count("."), n)):
        parents = suffixes(name)
        if any(p in kept_set for p in parents[1:]):
            result.skip(Skip.REDUNDANT, 0, name)
        elif any(p in never_block for p in parents):
            result.skip(Skip.NEVER_BLOCK, 0, name)
        elif name in above_never:
            result.skip(Skip.ABOVE_NEVER_BLOCK, 0, name)
        elif name in shared:
            result.skip(Skip.SHARED, 0, name)
        elif any(p in catalogued for p in parents):
            owner = next(catalogued[p][0] for p in parents if p in catalogued)
            result.skip(Skip.CATALOGUED, 0, f"{name} (service {owner})")
        else:
            kept.append(name)
            kept_set.add(name)
    kept.sort()
    result.domains = kept
    return result


def render_catalog(
    result: ImportResult,
    *,
    service_id: str,
    name: str,
    category: str,
    source: str,
    today: dt.date,
) -> str:
    """The extra catalogue file's text: one service, its domains one a line."""
    note = f"imported from {source} ({result.format} format) on {today.isoformat()}"
    header = (
        f"# Made by `socialguard catalog import` from {source} on {today.isoformat()}:\n"
        f"# {len(result.domains)} domains. Re-run the import to refresh it; do not edit by hand.\n"
        "# Use it by listing this file under `catalogs:` in config/policy.yaml.\n"
    )
    body = "".join(f"      {d}\n" for d in result.domains)
    return (
        f"{header}version: 1\nservices:\n  {service_id}:\n"
        f"    name: {json.dumps(name)}\n"
        f"    category: {category}\n"
        f"    sources: {json.dumps(note)}\n"
        f"    added: {today.isoformat()}\n"
        f"    reviewed: {today.isoformat()}\n"
        f"    domains: |\n{body}"
    )


def service_id_for(stem: str) -> str:
    """A catalogue id from a file name: `AdGuard Social.txt` → `imported-adguard-social`."""
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "list"
    return f"imported-{slug}"
