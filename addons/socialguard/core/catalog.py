"""The catalogue: which services are social media, in which category, under which domains.

Pure: parses already-loaded YAML and answers lookups (files.catalog_file reads the files).
A lookup costs one dict probe per label of the host, whatever the size of the catalogue: the
bookkeeping kept for explanations and statistics is never touched on that path.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from socialguard.core.hosts import suffixes
from socialguard.core.problems import (
    ConfigError,
    LocatedDict,
    LocatedList,
    Problem,
    Problems,
    unknown_keys,
)

CATEGORIES = (
    "social-networking",
    "blogging",
    "multimedia-sharing",
    "information-sharing",
    "review-and-opinion",
    "forums",
    "dating",
    "personal-pages",
)
# The kinds of domain a service entry lists; `domains` is the unlabelled form imports write.
KINDS = ("web", "app", "cdn", "short")
KIND_LABELS = {
    "web": "web",
    "app": "app API",
    "cdn": "CDN/media",
    "short": "short link",
    "domains": "domain",
    "exact": "exact host",
}
_SERVICE_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
_DOMAIN = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)+")
_SERVICE_KEYS = {
    "name", "category", "domains", *KINDS, "exact", "sources", "added", "reviewed", "notes",
}  # fmt: skip
_LEFT_OUT_KEYS = {"domain", "why", "used_by"}
_CATEGORY_KEYS = {"description"}
_TOP_KEYS = {"version", "categories", "services", "never_block", "shared_infrastructure_left_out"}


# A host name of 253 characters has at most 127 labels.
MAX_LABELS = 127


def is_domain(text: str) -> bool:
    """Whether `text` is a plain lower-case domain name as the catalogue stores it."""
    return _DOMAIN.fullmatch(text) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """One social-media service and every domain its web site and apps use."""

    id: str
    name: str
    category: str
    domains: tuple[str, ...]
    source: str = ""
    reviewed: dt.date | None = None
    added: dt.date | None = None
    # (kind, domains) for the labelled kinds (web, app, cdn, short); unlabelled ones are "domains".
    kinds: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Host names that match only as themselves, never as a suffix: a bare `youtube.com`, whose
    # subdomains include a never-block sign-in host, so it cannot be listed as a suffix.
    exact: tuple[str, ...] = ()

    def kind_of(self, domain: str) -> str:
        """Which kind of entry `domain` is (web, app, cdn, short, exact or domains)."""
        if domain in self.exact:
            return "exact"
        for kind, listed in self.kinds:
            if domain in listed:
                return kind
        return "domains"

    def domains_of(self, kind: str) -> tuple[str, ...]:
        """The domains listed under one kind."""
        for listed_kind, listed in self.kinds:
            if listed_kind == kind:
                return listed
        return ()

    def last_reviewed(self) -> dt.date | None:
        """When someone last checked the entry: the review date, else the date it was added."""
        return self.reviewed or self.added


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """What a lookup found: a service (and the entry that matched) or a never-block entry."""

    service: Service | None
    domain: str | None
    protected_by: str | None = None


NO_MATCH = Match(service=None, domain=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class LeftOut:
    """A domain a service uses that is deliberately not blocked, because others need it too."""

    domain: str
    why: str
    used_by: str | None = None
    origin: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Duplicate:
    """A domain listed again (by the same or another service, in the same or another file)."""

    domain: str
    first_service: str
    first_origin: str
    service: str
    origin: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """Why a host is or is not social media, naming the entry and the file that decided it."""

    host: str
    service: Service | None = None
    entry: str | None = None
    kind: str | None = None
    entry_origin: str | None = None
    protected_by: str | None = None
    protected_origin: str | None = None
    left_out: LeftOut | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Overlap:
    """An entry of one service that sits under an entry of another (the more specific wins)."""

    domain: str
    service: str
    parent: str
    parent_service: str


@dataclass(slots=True, kw_only=True)
class Catalog:
    """Services by id and a suffix index from domain to service."""

    services: dict[str, Service] = field(default_factory=dict)
    never_block: frozenset[str] = frozenset()
    index: dict[str, Service | str] = field(default_factory=dict)
    exact_index: dict[str, Service] = field(default_factory=dict)
    # The most labels any index (and exact) key has: a host's longer suffixes cannot match, so
    # are not tried, and a long host costs no more probes than a short one.
    depth: int = MAX_LABELS
    exact_depth: int = MAX_LABELS
    # Entries dropped because a never-block domain covers them: (domain, service id).
    shadowed: list[tuple[str, str]] = field(default_factory=list)
    # Bookkeeping for explanations and stats, never read by `lookup`.
    # (service id, file, domains, exact hosts) as each file listed them, in order: the tuples are
    # the services' own where a file defines the service, so this costs no copy of the domains.
    listed: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    never_block_origin: dict[str, str] = field(default_factory=dict)
    left_out: dict[str, LeftOut] = field(default_factory=dict)
    # file → [services defined or extended, domains listed]
    files: dict[str, list[int]] = field(default_factory=dict)
    _explained: tuple[dict[str, tuple[str, str]], list[Duplicate]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    # service id → (its domains, the dict whose keys are exactly those domains), from parsing
    # until `build_index`, which turns the largest service's dict into the index itself: a
    # million-domain import then builds one million-entry dict, not two.
    _seeds: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def origin(self) -> dict[str, tuple[str, str]]:
        """domain → (service, file) that first listed it. Built on first use, by the commands
        that explain entries: a million-domain catalogue would otherwise hold a second dict of
        a million entries that the proxy never reads."""
        return self._explain_files()[0]

    @property
    def duplicates(self) -> list[Duplicate]:
        """Every domain listed again, by the same or another service or file (built on use)."""
        return self._explain_files()[1]

    def _explain_files(self) -> tuple[dict[str, tuple[str, str]], list[Duplicate]]:
        if self._explained is None:
            origin: dict[str, tuple[str, str]] = {}
            duplicates: list[Duplicate] = []
            for service_id, source, domains, exact in self.listed:
                tag = (service_id, source)
                for domain in itertools.chain(domains, exact):
                    first = origin.get(domain)
                    if first is None:
                        origin[domain] = tag
                    else:
                        duplicates.append(
                            Duplicate(
                                domain=domain,
                                first_service=first[0],
                                first_origin=first[1],
                                service=service_id,
                                origin=source,
                            )
                        )
            self._explained = (origin, duplicates)
        return self._explained

    def lookup(self, name: str) -> Match:
        """Classify a normalised host name; the most specific entry wins."""
        exact = self.exact_index.get(name)
        if exact is not None:
            return Match(service=exact, domain=name)
        found = self._suffix_entry(name)
        if found is None:
            return NO_MATCH
        suffix, entry = found
        if isinstance(entry, str):
            return Match(service=None, domain=None, protected_by=entry)
        return Match(service=entry, domain=suffix)

    def entry(self, name: str) -> Service | str | None:
        """What `lookup` finds, without building a Match: the service, a never-block domain
        (str) or None. `decide()` runs this for every name: one call, nothing built but suffixes
        (`_suffix_entry`, the same walk for `lookup`, returns the suffix too)."""
        dots = name.count(".")
        if dots < self.exact_depth:
            exact = self.exact_index.get(name)
            if exact is not None:
                return exact
        index = self.index
        start = 0
        if dots >= self.depth:
            start = len(name.rsplit(".", self.depth)[0]) + 1
        while True:
            entry = index.get(name[start:])
            if entry is not None:
                return entry
            start = name.find(".", start) + 1
            if not start:
                return None

    def _suffix_entry(self, name: str) -> tuple[str, Service | str] | None:
        """The most specific suffix of `name` in the index, trying only the last `depth` labels,
        so a long host costs no more probes than the longest entry has labels."""
        index = self.index
        start = 0
        if name.count(".") >= self.depth:
            start = len(name.rsplit(".", self.depth)[0]) + 1
        while True:
            suffix = name[start:]
            entry = index.get(suffix)
            if entry is not None:
                return suffix, entry
            start = name.find(".", start) + 1
            if not start:
                return None

    def build_index(self) -> None:
        """(Re)build the suffix index; never-block entries shadow anything at or under them."""
        seeds, self._seeds = self._seeds, {}
        services = tuple(self.services.values())
        largest = max(services, key=lambda s: len(s.domains), default=None)
        seed = seeds.get(largest.id) if largest is not None else None
        del seeds
        # None marks a domain of the largest service not yet claimed (by it, or by a service
        # listed before it: the first listing wins, as with setdefault).
        index: dict[str, Service | str | None] = {}
        if largest is not None and seed is not None and seed[0] is largest.domains:
            index = seed[1]
        del seed
        shadowed: list[tuple[str, str]] = []
        never_block = self.never_block
        # `domain` or any parent of it is protected: one C-level endswith, not a list of suffixes.
        under = tuple(f".{d}" for d in never_block)
        for service in services:
            for domain in service.domains:
                if domain in never_block or domain.endswith(under):
                    shadowed.append((domain, service.id))
                    index.pop(domain, None)  # never claimed: at most an unclaimed mark
                    continue
                if index.get(domain) is None:
                    index[domain] = service
        exact_index: dict[str, Service] = {}
        for service in self.services.values():
            for host in service.exact:
                if host in never_block or host.endswith(under):
                    shadowed.append((host, service.id))
                    continue
                exact_index.setdefault(host, service)
        for domain in never_block:
            index[domain] = domain
        self.depth = 1 + max(map(str.count, index, itertools.repeat(".")), default=0)
        self.exact_depth = 1 + max(map(str.count, exact_index, itertools.repeat(".")), default=0)
        self.index = cast(dict[str, Service | str], index)  # every mark claimed or removed
        self.exact_index = exact_index
        self.shadowed = shadowed

    def explain(self, name: str) -> Explanation:
        """Say which entry (and file) classifies a normalised host, or why it is left alone."""
        match = self.lookup(name)
        if match.protected_by is not None:
            return Explanation(
                host=name,
                protected_by=match.protected_by,
                protected_origin=self.never_block_origin.get(match.protected_by),
            )
        if match.service is not None and match.domain is not None:
            origin = self.origin.get(match.domain)
            return Explanation(
                host=name,
                service=match.service,
                entry=match.domain,
                kind=match.service.kind_of(match.domain),
                entry_origin=origin[1] if origin else None,
            )
        for suffix in suffixes(name):
            left_out = self.left_out.get(suffix)
            if left_out is not None:
                return Explanation(host=name, left_out=left_out)
        return Explanation(host=name)

    def never_block_conflicts(self) -> list[tuple[str, str, str]]:
        """(entry, service, never-block domain) where one is at, under or above the other."""
        conflicts: list[tuple[str, str, str]] = []
        for service in self.services.values():
            # An exact host covers nothing under it: it clashes only at or under a protected one.
            for host in service.exact:
                conflicts.extend(
                    (host, service.id, s) for s in suffixes(host) if s in self.never_block
                )
            for domain in service.domains:
                for suffix in suffixes(domain):
                    if suffix in self.never_block:
                        conflicts.append((domain, service.id, suffix))
        for protected in self.never_block:
            for suffix in suffixes(protected)[1:]:
                owner = self.origin.get(suffix)
                if owner is not None and suffix in self.services[owner[0]].domains:
                    conflicts.append((suffix, owner[0], protected))
        return sorted(set(conflicts))

    def overlaps(self) -> list[Overlap]:
        """Entries of one service under an entry of another: legitimate, but worth a look."""
        found: list[Overlap] = []
        origin = self.origin
        for domain, (service, _) in origin.items():
            for parent in suffixes(domain)[1:]:
                owner = origin.get(parent)
                if owner is not None and owner[0] != service:
                    found.append(
                        Overlap(
                            domain=domain, service=service, parent=parent, parent_service=owner[0]
                        )
                    )
        return sorted(found, key=lambda o: (o.parent, o.domain))

    def left_out_conflicts(self) -> list[tuple[str, str, str]]:
        """(entry, service, left-out domain) where an entry blocks shared infrastructure whole."""
        found: list[tuple[str, str, str]] = []
        for shared in self.left_out:
            for suffix in suffixes(shared):
                owner = self.origin.get(suffix)
                if owner is not None and suffix in self.services[owner[0]].domains:
                    found.append((suffix, owner[0], shared))
        return sorted(found)

    def stale(self, today: dt.date, days: int) -> list[Service]:
        """Services not reviewed (or added) within `days` of `today`, or never dated."""
        limit = today - dt.timedelta(days=days)
        return [
            s
            for s in self.services.values()
            if (reviewed := s.last_reviewed()) is None or reviewed < limit
        ]


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    return None


def _domain_items(value: Any, line: int) -> list[tuple[Any, int]] | None:
    """The items of a domain list with their lines (block strings are read by `_block_domains`)."""
    if not isinstance(value, list):
        return None
    if isinstance(value, LocatedList):
        return [(item, value.line_of(i)) for i, item in enumerate(value)]
    return [(item, line) for item in value]


def _not_a_domain(where: str, i: int, item: Any) -> str:
    return (
        f"{where}[{i}]: {item!r} is not a domain name (write e.g. example.com, "
        "no scheme, path or wildcard)"
    )


def _block_domains(
    value: str, where: str, line: int, problems: Problems, *, required: bool
) -> tuple[str, ...]:
    """`domains: |` with one domain a line: imports write this form because YAML reads one long
    string far faster than a million list items. A line that is already a clean domain is kept
    as it is: no lower-cased copy, no (item, line) pair, so a million domains cost one string
    each and leave no garbage between them."""
    out: list[str] = []
    count = 0
    clean = _DOMAIN.fullmatch
    for offset, text in enumerate(value.splitlines(), start=1):
        if clean(text):
            out.append(text)
            count += 1
            continue
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        normalised = stripped.lower().rstrip(".")
        if clean(normalised):
            out.append(normalised)
        else:
            problems.add(line + offset, _not_a_domain(where, count, stripped))
        count += 1
    if required and not count:
        problems.add(line, f"{where}: needs a non-empty list of domains")
    return tuple(out)


def _domains(
    value: Any, where: str, line: int, problems: Problems, *, required: bool = True
) -> tuple[str, ...]:
    if isinstance(value, str):
        return _block_domains(value, where, line, problems, required=required)
    items = _domain_items(value, line)
    if items is None or (required and not items):
        problems.add(line, f"{where}: needs a non-empty list of domains")
        return ()
    out: list[str] = []
    for i, (item, item_line) in enumerate(items):
        text = str(item).strip().lower().rstrip(".")
        if not _DOMAIN.fullmatch(text):
            problems.add(item_line, _not_a_domain(where, i, item))
            continue
        out.append(text)
    return tuple(out)


def _service_domains(
    entry: LocatedDict, where: str, problems: Problems
) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...], dict[str, None]]:
    """All of an entry's domains in order, the labelled kinds among them, and the dict that
    de-duplicated them (kept, for the largest service, to become the index)."""
    labelled = [k for k in KINDS if k in entry]
    if "domains" not in entry and not labelled:
        problems.add(
            entry.line,
            f"{where}: needs domains (or web, app, cdn and short lists of domains)",
        )
        return (), (), {}
    kinds: list[tuple[str, tuple[str, ...]]] = []
    every: list[str] = []
    for kind in labelled:
        listed = _domains(
            entry.get(kind), f"{where}.{kind}", entry.line_of(kind), problems, required=False
        )
        kinds.append((kind, listed))
        every.extend(listed)
    if "domains" in entry:
        every.extend(
            _domains(
                entry.get("domains"),
                f"{where}.domains",
                entry.line_of("domains"),
                problems,
                required=not labelled,
            )
        )
    if labelled and not every:
        problems.add(entry.line, f"{where}: lists no domains at all")
    unique = dict.fromkeys(every)
    del every  # a million-entry list: freed before the tuple is built
    return tuple(unique), tuple(kinds), unique


def _categories(value: Any, problems: Problems) -> None:
    """The `categories:` descriptions: only the known categories, each with a description."""
    if value is None:
        return
    if not isinstance(value, dict):
        problems.add(getattr(value, "line", 1), "categories: must map a category to {description}")
        return
    unknown_keys(value, CATEGORIES, "categories", problems, noun="category")
    for name, entry in value.items():
        if isinstance(entry, dict):
            unknown_keys(entry, _CATEGORY_KEYS, f"categories.{name}", problems)


def _left_out(data: LocatedDict, source: str, catalog: Catalog, problems: Problems) -> None:
    value = data.get("shared_infrastructure_left_out")
    if value is None:
        return
    line = data.line_of("shared_infrastructure_left_out")
    if not isinstance(value, list):
        problems.add(line, "shared_infrastructure_left_out: must be a list of {domain, why}")
        return
    for i, item in enumerate(value):
        item_line = value.line_of(i) if isinstance(value, LocatedList) else line
        where = f"shared_infrastructure_left_out[{i}]"
        if not isinstance(item, dict):
            problems.add(item_line, f"{where}: write {{domain: ..., used_by: ..., why: ...}}")
            continue
        unknown_keys(item, _LEFT_OUT_KEYS, where, problems)
        domain = str(item.get("domain", "")).strip().lower()
        why = item.get("why")
        if not _DOMAIN.fullmatch(domain):
            problems.add(item_line, f"{where}.domain: {domain!r} is not a domain name")
            continue
        if not isinstance(why, str) or not why.strip():
            problems.add(item_line, f"{where}.why: say why {domain} is left out")
            continue
        used_by = item.get("used_by")
        catalog.left_out[domain] = LeftOut(
            domain=domain,
            why=why.strip(),
            used_by=str(used_by) if used_by is not None else None,
            origin=source,
        )


def _record(
    catalog: Catalog,
    service_id: str,
    domains: tuple[str, ...],
    exact: tuple[str, ...],
    source: str,
) -> None:
    """Keep what one file listed for a service, for `origin` and `duplicates` to be built from."""
    catalog.listed.append((service_id, source, domains, exact))
    catalog._explained = None


def parse_catalog(data: Any, source: str) -> Catalog:
    """Validate one catalogue file's data: a catalogue ready for lookups (its index built)."""
    return parse_catalogs([(data, source)])


def parse_catalogs(
    files: Iterable[tuple[Any, str]],
    extra_never_block: Iterable[str] = (),
    extra_origin: str = "policy.yaml practice.domains",
) -> Catalog:
    """Validate several files' data, each extending the ones before, plus never-block names
    from elsewhere; every file's problems are reported together. The index is built once, at
    the end: a catalogue never leaves here without one (without it, everything is allowed)."""
    catalog = Catalog()
    errors: list[Problem] = []
    for data, source in files:
        try:
            _add_file(data, source, catalog)
        except ConfigError as error:
            errors.extend(error.problems)
    if errors:
        raise ConfigError(errors)
    extra = tuple(d.strip().lower().rstrip(".") for d in extra_never_block)
    for domain in extra:
        catalog.never_block_origin.setdefault(domain, extra_origin)
    catalog.never_block = catalog.never_block | frozenset(extra)
    catalog.build_index()
    return catalog


def _add_file(data: Any, source: str, catalog: Catalog) -> None:
    """Validate one file's data and add its services and never-block names to `catalog`."""
    problems = Problems(source)
    if not isinstance(data, LocatedDict):
        problems.add(1, "a catalogue file must be a mapping with a `services:` key")
        problems.raise_if_any()
        return  # unreachable: raise_if_any raised
    unknown_keys(data, _TOP_KEYS, "", problems)
    _categories(data.get("categories"), problems)
    services = data.get("services") or LocatedDict()
    if not isinstance(services, dict):
        problems.add(data.line_of("services"), "services: must be a mapping of id → service")
        services = LocatedDict()
    counts = catalog.files.setdefault(source, [0, 0])
    for service_id, entry in services.items():
        line = services.line_of(service_id) if isinstance(services, LocatedDict) else 1
        where = f"services.{service_id}"
        if not _SERVICE_ID.fullmatch(str(service_id)):
            problems.add(line, f"{where}: ids are lower case letters, digits and hyphens")
        if not isinstance(entry, LocatedDict):
            problems.add(line, f"{where}: must be a mapping with name, category and domains")
            continue
        unknown_keys(entry, _SERVICE_KEYS, where, problems)
        category = entry.get("category")
        if category not in CATEGORIES:
            problems.add(
                entry.line_of("category"),
                f"{where}.category: {category!r} is not one of {', '.join(CATEGORIES)}",
            )
        domains, kinds, unique = _service_domains(entry, where, problems)
        exact = (
            _domains(entry.get("exact"), f"{where}.exact", entry.line_of("exact"), problems)
            if "exact" in entry
            else ()
        )
        sid = str(service_id)
        counts[0] += 1
        counts[1] += len(domains)
        existing = catalog.services.get(sid)
        if existing is not None:
            if existing.category != category:
                problems.add(
                    line,
                    f"{where}: already defined in category {existing.category!r}; an extra "
                    "file may add domains to a service but not move it",
                )
                continue
            known = set(existing.domains)
            catalog._seeds.pop(sid, None)  # its domains are no longer that dict's keys
            _record(catalog, sid, domains, exact, source)
            domains = existing.domains + tuple(d for d in domains if d not in known)
            kinds = existing.kinds + kinds
            exact = existing.exact + tuple(h for h in exact if h not in existing.exact)
        else:
            _record(catalog, sid, domains, exact, source)
            catalog._seeds[sid] = (domains, unique)
        del unique
        catalog.services[sid] = Service(
            id=sid,
            name=str(entry.get("name") or (existing.name if existing else service_id)),
            category=str(category),
            domains=domains,
            source=str(entry.get("sources") or (existing.source if existing else "")),
            reviewed=_as_date(entry.get("reviewed")) or (existing.reviewed if existing else None),
            added=_as_date(entry.get("added")) or (existing.added if existing else None),
            kinds=kinds,
            exact=exact,
        )
    never = data.get("never_block") or []
    if not isinstance(never, list):
        problems.add(data.line_of("never_block"), "never_block: must be a list of domains")
    elif never:
        extra = _domains(never, "never_block", data.line_of("never_block"), problems)
        for domain in extra:
            catalog.never_block_origin.setdefault(domain, source)
        catalog.never_block = catalog.never_block | frozenset(extra)
    _left_out(data, source, catalog, problems)
    problems.raise_if_any()
