"""The signup guard's known endpoints: where a site registers an account or changes its e-mail.

Two files say so, in one format: the list shipped beside the catalogue
(data/signup_endpoints.yaml) and, when policy.yaml names one (`signup_guard.endpoints`), the
practice's own — a local supplier's shop, or a site whose form moved before an update ships.
The practice's sites are added to the shipped ones; a site id that is also shipped replaces the
shipped entry whole. Every endpoint remembers the file and line it came from, so
`socialguard check --signup` can say which rule matched and where it is written.

Pure: parses already-loaded YAML and combines the two lists; files/signup_file.py reads them.
"""

from __future__ import annotations

import datetime as dt
import enum
import urllib.parse
from dataclasses import dataclass
from typing import Any

from socialguard.core.hosts import HostError, normalise_host, suffixes
from socialguard.core.problems import LocatedDict, LocatedList, Problems, unknown_keys


class Kind(enum.StrEnum):
    """What a known endpoint does with the account."""

    REGISTRATION = "registration"
    EMAIL_CHANGE = "email_change"


_KIND_LABELS = {Kind.REGISTRATION: "registration", Kind.EMAIL_CHANGE: "e-mail change"}
SITE_KEYS = frozenset({"name", "hosts", "checked", "how", *(str(kind) for kind in Kind)})
FORMAT = "see docs/SIGNUP.md, 'Keeping the endpoints'"


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """One known place where a site registers an account or changes its e-mail address.

    `path` is a prefix of the request path (`/ap/register` also matches `/ap/register/x`);
    `query`, when given, must appear in the query string (`flow_name=signup`). `source` and
    `line` say where it is written; `site_id` is its site's key there.
    """

    site: str
    hosts: tuple[str, ...]
    kind: Kind
    path: str
    query: str
    checked: dt.date
    site_id: str = ""
    source: str = ""
    line: int = 0

    def matches(self, host: str, path: str, query: str) -> bool:
        if not any(s in self.hosts for s in suffixes(host)):
            return False
        path, prefix = path.lower().rstrip("/"), self.path.rstrip("/")
        if path != prefix and not path.startswith(prefix + "/"):
            return False
        return not self.query or self.query in urllib.parse.unquote_plus(query).lower()

    @property
    def checked_label(self) -> str:
        return f"{self.checked.day} {self.checked:%B %Y}"

    @property
    def label(self) -> str:
        where = self.path + (f"?{self.query}" if self.query else "")
        return f"{self.site}'s {_KIND_LABELS[self.kind]} endpoint {where}"

    @property
    def written_at(self) -> str:
        """`FILE:LINE` of the path's entry: where to look, and where to correct it."""
        return f"{self.source}:{self.line}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Site:
    """One site's entry: its id (the key under `sites:`), its line and its endpoints (none, for
    a practice's entry that only takes a shipped site's paths away)."""

    id: str
    line: int
    endpoints: tuple[Endpoint, ...]


def parse_endpoints(data: Any, source: str) -> tuple[Endpoint, ...]:
    """The shipped file (data/signup_endpoints.yaml): per site, its hosts, the day checked and
    its endpoints."""
    problems = Problems(source)
    sites = _read_sites(data, problems)
    problems.raise_if_any()
    return tuple(endpoint for site in sites for endpoint in site.endpoints)


def parse_practice_endpoints(
    data: Any, source: str, shipped: tuple[Endpoint, ...]
) -> tuple[Endpoint, ...]:
    """The endpoints in force with a practice's own file: its sites first, then every shipped
    site whose id it does not use (a shipped id replaces that site's entry whole)."""
    problems = Problems(source)
    sites = _read_sites(data, problems)
    shipped_ids = sorted({e.site_id for e in shipped})
    for site in sites:
        if not site.endpoints and site.id not in shipped_ids:
            problems.add(
                site.line,
                f"sites.{site.id}: lists no registration or email_change paths — add the paths "
                "where the site registers, e.g. registration: [/account/register] (an entry "
                "with none only takes a shipped site's paths away, under its id: "
                f"{', '.join(shipped_ids)})",
            )
    problems.raise_if_any()
    replaced = {site.id for site in sites}
    own = tuple(endpoint for site in sites for endpoint in site.endpoints)
    return own + tuple(e for e in shipped if e.site_id not in replaced)


def _read_sites(data: Any, problems: Problems) -> list[Site]:
    """Every site of an endpoints file; each problem is added at its line."""
    if not isinstance(data, LocatedDict) or not isinstance(data.get("sites"), dict):
        problems.add(
            getattr(data, "line", 0) or 1,
            "must hold 'sites:', a mapping of site id to {name, hosts, checked, registration, "
            f"email_change}} ({FORMAT}; write 'sites: {{}}' for none)",
        )
        return []
    unknown_keys(data, ("sites",), "", problems)
    entries = data["sites"]
    sites = []
    for site_id, entry in entries.items():
        line = entries.line_of(site_id) if isinstance(entries, LocatedDict) else 1
        site = _read_site(str(site_id), entry, line, problems)
        if site is not None:
            sites.append(site)
    return sites


def _read_site(site_id: str, entry: Any, line: int, problems: Problems) -> Site | None:
    where = f"sites.{site_id}"
    if not isinstance(entry, dict):
        problems.add(line, f"{where}: must be a mapping with name, hosts, checked and paths")
        return None
    before = len(problems.found)

    def at(key: str) -> int:
        """The line of `key` in the entry, or the site's own line when it is missing."""
        return entry.key_lines.get(key, line) if isinstance(entry, LocatedDict) else line

    unknown_keys(entry, SITE_KEYS, where, problems)
    name = entry.get("name", site_id)
    if not isinstance(name, str) or not name.strip():
        problems.add(at("name"), f"{where}.name: the site's name as people know it, e.g. Amazon")
    how = entry.get("how")
    if how is not None and not isinstance(how, str):
        problems.add(at("how"), f"{where}.how: a sentence saying how the paths were checked")
    hosts = _hosts(entry.get("hosts"), where, at("hosts"), problems)
    checked = entry.get("checked")
    if not isinstance(checked, dt.date) or isinstance(checked, dt.datetime):
        problems.add(
            at("checked"),
            f"{where}.checked: the day the endpoints were checked, written like 2026-12-01",
        )
    endpoints: list[Endpoint] = []
    for kind in Kind:
        paths = entry.get(str(kind))
        if paths is None:
            continue
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            problems.add(at(kind), f"{where}.{kind}: a list of paths, e.g. [/ap/register]")
            continue
        for index, raw in enumerate(paths):
            path_line = paths.line_of(index) if isinstance(paths, LocatedList) else at(kind)
            path, _, query = raw.strip().lower().partition("?")
            if not path.startswith("/"):
                problems.add(
                    path_line,
                    f"{where}.{kind}: {raw!r} must be a path on the site, starting with / "
                    "(e.g. /account/register, not the whole address)",
                )
                continue
            if isinstance(checked, dt.date):
                endpoints.append(
                    Endpoint(
                        site=str(name),
                        hosts=hosts,
                        kind=kind,
                        path=path,
                        query=query,
                        checked=checked,
                        site_id=site_id,
                        source=problems.source,
                        line=path_line,
                    )
                )
    if len(problems.found) > before:
        return None
    return Site(id=site_id, line=line, endpoints=tuple(endpoints))


def _hosts(value: Any, where: str, line: int, problems: Problems) -> tuple[str, ...]:
    """The site's host names, normalised as the guard compares them (lower case, IDNA)."""
    if not isinstance(value, list) or not value or not all(isinstance(h, str) for h in value):
        problems.add(line, f"{where}.hosts: a list of host names, e.g. [amazon.co.uk]")
        return ()
    hosts = []
    for index, raw in enumerate(value):
        try:
            hosts.append(normalise_host(raw).name)
        except HostError as error:
            at = value.line_of(index) if isinstance(value, LocatedList) else line
            problems.add(at, f"{where}.hosts: {raw!r} is not a host name: {error.reason}")
    return tuple(hosts)
