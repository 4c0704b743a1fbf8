"""Turn a public block list into an extra catalogue file: hosts files, plain domain lists,
adblock-style `||domain^` rules and v2fly domain-list-community files.

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
from collections.abc import Callable, Iterable
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
# The rule types of a v2fly domain-list-community file (a bare name is a `domain:` rule).
_V2FLY_PREFIXES = ("domain:", "full:", "keyword:", "regexp:", "include:")
# Attributes whose rules are not the service itself: `@ads` marks its ad and tracking hosts.
V2FLY_LEFT_OUT_ATTRIBUTES = frozenset({"ads"})


class ListFormat(enum.StrEnum):
    """The list formats `catalog import` reads."""

    HOSTS = "hosts"
    DOMAINS = "domains"
    ADBLOCK = "adblock"
    V2FLY = "v2fly"


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
    REGEXP = "regexp: rule (a regular expression is not a domain)"
    KEYWORD = "keyword: rule (a piece of a name, not a domain)"
    TOP_LEVEL = "a whole top-level domain (.youtube, .yahoo): far too broad"
    ATTRIBUTE = "rule marked with an attribute left out (@ads: trackers, not the service)"
    INCLUDE = "include: of another list that was not followed (missing, or a loop)"


@dataclass(slots=True, kw_only=True)
class ImportResult:
    """The kept domains (sorted) and, for every reason, how many were skipped and examples."""

    format: ListFormat
    lines: int = 0
    domains: list[str] = field(default_factory=list)
    # Hosts kept only as themselves: a v2fly `full:` rule, or a host under shared infrastructure
    # (a CDN or a cloud), which is never claimed as a suffix.
    exact: list[str] = field(default_factory=list)
    skipped: Counter[Skip] = field(default_factory=Counter)
    examples: dict[Skip, list[tuple[int, str]]] = field(default_factory=dict)

    def skip(self, reason: Skip, line: int, text: str) -> None:
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES_PER_REASON:
            shown.append((line, text[:120]))


def detect_format(lines: Iterable[str]) -> ListFormat:
    """Guess the format from the first 200 lines that are not comments. A v2fly file may list
    plain names for dozens of lines before its first `full:` or `include:`, so all are read."""
    seen = 0
    for raw in lines:
        line = raw.strip()
        if not line or line[0] in "#!;[":
            continue
        if line.startswith(("||", "|", "@@")):
            return ListFormat.ADBLOCK
        if line.startswith(_V2FLY_PREFIXES) or " @" in line:
            return ListFormat.V2FLY
        first = line.split(None, 1)[0]
        if len(line.split()) > 1 and _is_ip(first):
            return ListFormat.HOSTS
        seen += 1
        if seen >= 200:
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
    if list_format is ListFormat.V2FLY:
        rules, found = parse_v2fly("\n".join(lines))
        return [rule.name for rule in rules], found
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

    A v2fly list read this way does not follow its `include:` lines (`import_v2fly` does, given
    a way to read the other lists). What is kept and skipped is `select`'s choice.
    """
    if list_format is ListFormat.V2FLY:
        return import_v2fly("\n".join(lines), catalog=catalog)
    names, result = parse_list(lines, list_format)
    return select(names, (), result, catalog)


def select(
    names: list[str],
    exact: Iterable[str],
    result: ImportResult,
    catalog: Catalog | None = None,
) -> ImportResult:
    """Keep the names (suffixes) and exact hosts that add something to `catalog`, sorted.

    Skipped: repeats; names under another name of the list; names at, under or above a
    never-block domain (an exact host only at or under: it covers nothing below it); shared
    infrastructure itself and anything above it; names the catalogue already covers, so an
    import never moves a catalogued host to another service. A name under shared
    infrastructure (a CDN, a cloud, Google's content hosts) is kept only as an exact host:
    as a suffix it could take other sites' traffic with it.
    """
    unique = set(names)
    exact_unique = set(exact)
    duplicates = len(names) - len(unique) + len(exact_unique & unique)
    exact_unique -= unique
    if duplicates:
        result.skipped[Skip.DUPLICATE] += duplicates
    never_block = catalog.never_block if catalog else frozenset()
    above_never = {s for d in never_block for s in suffixes(d)[1:]}
    left_out = catalog.left_out if catalog else {}
    shared = {s for d in left_out for s in suffixes(d)}
    catalogued = catalog.origin if catalog else {}
    kept: list[str] = []
    kept_exact: list[str] = []
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
        elif any(p in left_out for p in parents[1:]):
            kept_exact.append(name)
        else:
            kept.append(name)
            kept_set.add(name)
    for host in sorted(exact_unique):
        parents = suffixes(host)
        if any(p in kept_set for p in parents):
            result.skip(Skip.REDUNDANT, 0, host)
        elif any(p in never_block for p in parents):
            result.skip(Skip.NEVER_BLOCK, 0, host)
        elif host in left_out:
            result.skip(Skip.SHARED, 0, host)
        elif any(p in catalogued for p in parents):
            owner = next(catalogued[p][0] for p in parents if p in catalogued)
            result.skip(Skip.CATALOGUED, 0, f"{host} (service {owner})")
        else:
            kept_exact.append(host)
    kept.sort()
    kept_exact.sort()
    result.domains = kept
    result.exact = kept_exact
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
        f"# {len(result.domains)} domains, {len(result.exact)} exact hosts. Re-run the import to "
        "refresh it; do not edit by hand.\n"
        "# Use it by listing this file under `catalogs:` in config/policy.yaml.\n"
    )
    body = "".join(f"      {d}\n" for d in result.domains)
    exact = "".join(f"      {h}\n" for h in result.exact)
    return (
        f"{header}version: 1\nservices:\n  {service_id}:\n"
        f"    name: {json.dumps(name)}\n"
        f"    category: {category}\n"
        f"    sources: {json.dumps(note)}\n"
        f"    added: {today.isoformat()}\n"
        f"    reviewed: {today.isoformat()}\n"
        f"    domains: |\n{body}" + (f"    exact: |\n{exact}" if exact else "")
    )


def service_id_for(stem: str) -> str:
    """A catalogue id from a file name: `AdGuard Social.txt` → `imported-adguard-social`."""
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "list"
    return f"imported-{slug}"


@dataclass(frozen=True, slots=True)
class V2flyRule:
    """One `domain:` or `full:` rule of a v2fly list, with where it came from."""

    name: str
    # True for `full:` (this host only), False for `domain:` (the name and every host under it).
    full: bool
    attributes: frozenset[str]
    list_name: str
    line: int
    # The comment heading the rule's block ("CDN", "Ads/tracking"), or "" where there is none.
    section: str


def _v2fly_wanted(rule: V2flyRule, wanted: frozenset[str], unwanted: frozenset[str]) -> bool:
    """`include:list @a @-b` takes only the rules with every `a` and none of the `b`."""
    return wanted <= rule.attributes and not (unwanted & rule.attributes)


def _v2fly_rules(
    text: str,
    list_name: str,
    include: Callable[[str], str | None] | None,
    left_out: frozenset[str],
    result: ImportResult,
    stack: tuple[str, ...],
) -> list[V2flyRule]:
    rules: list[V2flyRule] = []
    section = ""
    where = "" if len(stack) == 1 else f"{list_name}: "
    for line_no, raw in enumerate(text.splitlines(), start=1):
        body, hashed, comment = raw.partition("#")
        body = body.strip()
        if not body:
            if hashed:
                section = comment.strip()
                result.skip(Skip.COMMENT, line_no, where + raw.strip())
            else:
                section = ""  # a blank line ends a commented block
            continue
        tokens = body.split()
        attributes = frozenset(t[1:] for t in tokens[1:] if t.startswith("@") and len(t) > 1)
        kind, colon, value = tokens[0].partition(":")
        if not colon:
            kind, value = "domain", tokens[0]
        if kind == "include":
            wanted = frozenset(a for a in attributes if not a.startswith("-"))
            unwanted = frozenset(a[1:] for a in attributes if a.startswith("-"))
            other = include(value) if include is not None and value not in stack else None
            if other is None:
                result.skip(Skip.INCLUDE, line_no, where + body)
                continue
            included = _v2fly_rules(other, value, include, left_out, result, (*stack, value))
            rules.extend(r for r in included if _v2fly_wanted(r, wanted, unwanted))
        elif kind == "regexp":
            result.skip(Skip.REGEXP, line_no, where + body)
        elif kind == "keyword":
            result.skip(Skip.KEYWORD, line_no, where + body)
        elif kind not in ("domain", "full"):
            result.skip(Skip.UNSUPPORTED, line_no, where + body)
        elif "." not in value.strip("."):
            result.skip(Skip.TOP_LEVEL, line_no, where + body)
        elif attributes & left_out:
            result.skip(Skip.ATTRIBUTE, line_no, where + body)
        else:
            name = _name(value, line_no, result)
            if name is not None:
                rules.append(
                    V2flyRule(
                        name=name,
                        full=kind == "full",
                        attributes=attributes,
                        list_name=list_name,
                        line=line_no,
                        section=section,
                    )
                )
    if len(stack) == 1:
        result.lines = len(text.splitlines())
    return rules


def parse_v2fly(
    text: str,
    *,
    name: str = "list",
    include: Callable[[str], str | None] | None = None,
    left_out_attributes: frozenset[str] = V2FLY_LEFT_OUT_ATTRIBUTES,
) -> tuple[list[V2flyRule], ImportResult]:
    """Read one file of v2fly/domain-list-community (MIT): its rules in order, and the skips.

    `domain:` (or a bare name) covers the name and every host under it; `full:` one host only.
    `include:other` reads the list `other` through `include` (None: it is counted as skipped),
    `include:other @a @-b` only its rules with `@a` and without `@b`; a loop is not followed.
    `regexp:` and `keyword:` rules name no domain and are counted; `&affiliation` marks are
    ignored; rules carrying an attribute in `left_out_attributes` (`@ads`) are counted. Pure.
    """
    result = ImportResult(format=ListFormat.V2FLY)
    rules = _v2fly_rules(text, name, include, left_out_attributes, result, (name,))
    return rules, result


def import_v2fly(
    text: str,
    *,
    name: str = "list",
    include: Callable[[str], str | None] | None = None,
    catalog: Catalog | None = None,
    left_out_attributes: frozenset[str] = V2FLY_LEFT_OUT_ATTRIBUTES,
) -> ImportResult:
    """A v2fly list as `domains` (its `domain:` rules) and `exact` hosts (its `full:` rules),
    less what `select` skips: never-block, shared infrastructure, what is catalogued."""
    rules, result = parse_v2fly(
        text, name=name, include=include, left_out_attributes=left_out_attributes
    )
    domains = [r.name for r in rules if not r.full]
    exact = [r.name for r in rules if r.full]
    duplicates = len(exact) - len(set(exact))
    if duplicates:
        result.skipped[Skip.DUPLICATE] += duplicates
    return select(domains, exact, result, catalog)
