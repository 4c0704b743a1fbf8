"""The catalogue: which services are social media, in which category, under which domains.

Pure: parses already-loaded YAML and answers lookups; `load_catalog` is the only file access.
A lookup costs one dict probe per label of the host, whatever the size of the catalogue.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socialguard.hosts import suffixes
from socialguard.yamlfile import ConfigError, LocatedDict, LocatedList, Problems, read_yaml

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
_SERVICE_ID = re.compile(r"[a-z0-9][a-z0-9-]*")
_DOMAIN = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)+")
_SERVICE_KEYS = {"name", "category", "domains", "sources", "added", "reviewed", "notes"}
_TOP_KEYS = {"version", "categories", "services", "never_block", "shared_infrastructure_left_out"}


def embedded_catalog_path() -> Path:
    """The catalogue shipped inside the package."""
    return Path(str(importlib.resources.files("socialguard") / "data" / "catalog.yaml"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """One social-media service and every domain its web site and apps use."""

    id: str
    name: str
    category: str
    domains: tuple[str, ...]
    source: str = ""
    reviewed: dt.date | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """What a lookup found: a service (and the entry that matched) or a never-block entry."""

    service: Service | None
    domain: str | None
    protected_by: str | None = None


NO_MATCH = Match(service=None, domain=None)


@dataclass(slots=True, kw_only=True)
class Catalog:
    """Services by id and a suffix index from domain to service."""

    services: dict[str, Service] = field(default_factory=dict)
    never_block: frozenset[str] = frozenset()
    index: dict[str, Service | str] = field(default_factory=dict)
    # Entries dropped because a never-block domain covers them: (domain, service id).
    shadowed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def categories(self) -> frozenset[str]:
        return frozenset(CATEGORIES)

    def lookup(self, name: str) -> Match:
        """Classify a normalised host name; the most specific entry wins."""
        index = self.index
        for suffix in suffixes(name):
            entry = index.get(suffix)
            if entry is None:
                continue
            if isinstance(entry, str):
                return Match(service=None, domain=None, protected_by=entry)
            return Match(service=entry, domain=suffix)
        return NO_MATCH

    def build_index(self) -> None:
        """(Re)build the suffix index; never-block entries shadow anything at or under them."""
        index: dict[str, Service | str] = {}
        shadowed: list[tuple[str, str]] = []
        for service in self.services.values():
            for domain in service.domains:
                if any(s in self.never_block for s in suffixes(domain)):
                    shadowed.append((domain, service.id))
                    continue
                index.setdefault(domain, service)
        for domain in self.never_block:
            index[domain] = domain
        self.index = index
        self.shadowed = shadowed


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    return None


def _domains(
    value: Any, where: str, line: int, problems: Problems, container: Any
) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        problems.add(line, f"{where}: needs a non-empty list of domains")
        return ()
    out: list[str] = []
    for i, item in enumerate(value):
        item_line = container.line_of(i) if isinstance(container, LocatedList) else line
        text = str(item).strip().lower().rstrip(".")
        if not _DOMAIN.fullmatch(text):
            problems.add(
                item_line,
                f"{where}[{i}]: {item!r} is not a domain name (write e.g. example.com, "
                "no scheme, path or wildcard)",
            )
            continue
        out.append(text)
    return tuple(out)


def parse_catalog(data: Any, source: str, into: Catalog | None = None) -> Catalog:
    """Validate one catalogue file's data and add it to `into` (or a new catalogue)."""
    catalog = into if into is not None else Catalog()
    problems = Problems(source)
    if not isinstance(data, LocatedDict):
        problems.add(1, "a catalogue file must be a mapping with a `services:` key")
        problems.raise_if_any()
        return catalog  # unreachable: raise_if_any raised
    for key in data:
        if key not in _TOP_KEYS:
            problems.add(data.line_of(key), f"unknown key {key!r} (known: {sorted(_TOP_KEYS)})")
    services = data.get("services") or LocatedDict()
    if not isinstance(services, dict):
        problems.add(data.line_of("services"), "services: must be a mapping of id → service")
        services = LocatedDict()
    for service_id, entry in services.items():
        line = services.line_of(service_id) if isinstance(services, LocatedDict) else 1
        where = f"services.{service_id}"
        if not _SERVICE_ID.fullmatch(str(service_id)):
            problems.add(line, f"{where}: ids are lower case letters, digits and hyphens")
        if not isinstance(entry, LocatedDict):
            problems.add(line, f"{where}: must be a mapping with name, category and domains")
            continue
        for key in entry:
            if key not in _SERVICE_KEYS:
                problems.add(entry.line_of(key), f"{where}: unknown key {key!r}")
        category = entry.get("category")
        if category not in CATEGORIES:
            problems.add(
                entry.line_of("category"),
                f"{where}.category: {category!r} is not one of {', '.join(CATEGORIES)}",
            )
        domains = _domains(
            entry.get("domains"),
            f"{where}.domains",
            entry.line_of("domains"),
            problems,
            entry.get("domains"),
        )
        existing = catalog.services.get(str(service_id))
        if existing is not None:
            if existing.category != category:
                problems.add(
                    line,
                    f"{where}: already defined in category {existing.category!r}; an extra "
                    "file may add domains to a service but not move it",
                )
                continue
            domains = existing.domains + tuple(d for d in domains if d not in existing.domains)
        catalog.services[str(service_id)] = Service(
            id=str(service_id),
            name=str(entry.get("name") or (existing.name if existing else service_id)),
            category=str(category),
            domains=domains,
            source=str(entry.get("sources") or (existing.source if existing else "")),
            reviewed=_as_date(entry.get("reviewed"))
            or _as_date(entry.get("added"))
            or (existing.reviewed if existing else None),
        )
    never = data.get("never_block") or []
    if not isinstance(never, list):
        problems.add(data.line_of("never_block"), "never_block: must be a list of domains")
    elif never:
        extra = _domains(never, "never_block", data.line_of("never_block"), problems, never)
        catalog.never_block = catalog.never_block | frozenset(extra)
    problems.raise_if_any()
    return catalog


def load_catalog(
    paths: list[Path] | tuple[Path, ...] = (), extra_never_block: tuple[str, ...] = ()
) -> tuple[Catalog, list[bytes]]:
    """Load the shipped catalogue, then each extra file in order; returns the raw bytes too."""
    catalog = Catalog()
    raws: list[bytes] = []
    errors = []
    for path in (embedded_catalog_path(), *paths):
        try:
            data, raw = read_yaml(path)
            parse_catalog(data, str(path), into=catalog)
            raws.append(raw)
        except ConfigError as error:
            errors.extend(error.problems)
    if errors:
        raise ConfigError(errors)
    catalog.never_block = catalog.never_block | frozenset(extra_never_block)
    catalog.build_index()
    return catalog, raws
