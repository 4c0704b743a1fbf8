"""IT's settings (`config/policy.yaml`) laid over the embedded defaults, validated as a whole.

Pure: parses already-loaded YAML; `load_settings` is the only file access. Every key is
optional: a file holding one key overrides just that key of `DEFAULTS`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socialguard.core.admin_settings import (
    ADMIN_DEFAULTS,
    DIGEST_DEFAULTS,
    AdminSettings,
    DigestSettings,
    parse_admin,
    parse_digest,
)
from socialguard.core.catalog import CATEGORIES
from socialguard.core.destinations import Destinations
from socialguard.core.directory import LdapSettings, parse_ldap
from socialguard.core.hosts import unmapped
from socialguard.core.problems import LocatedDict, Problems, unknown_keys

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_POLICY_PATH = Path("config/policy.yaml")
DEFAULT_AUTHORISATIONS_PATH = Path("allowlists/authorisations.yaml")
DEFAULT_AUDIT_PATH = Path("var/audit.jsonl")
# The CA for HTTPS block pages lives beside the audit log: one place the gateway keeps state, the
# same for `run` and `ca export` started from the same directory.
DEFAULT_CA_DIR = Path("var/ca")
# Where an installed socialguard keeps its files (deploy/install.sh makes them): a policy file at
# ROOT/etc/socialguard/policy.yaml takes these defaults under ROOT (normally /).
INSTALLED_POLICY_PATH = Path("/etc/socialguard/policy.yaml")
INSTALLED_ETC = Path("etc/socialguard")
# In a folder of its own, which the page's user owns: the page writes a temporary file and a lock
# beside the list. deploy/install.sh moves a list found at etc/socialguard/authorisations.yaml.
INSTALLED_AUTHORISATIONS = INSTALLED_ETC / "allowlists" / "authorisations.yaml"
INSTALLED_ADMIN_HTPASSWD = INSTALLED_ETC / "admin.htpasswd"
INSTALLED_CA_DIR = Path("var/lib/socialguard/ca")
INSTALLED_AUDIT_PATH = Path("var/log/socialguard/audit.jsonl")
CONSOLE_MODES = ("counts", "full")


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """Where a policy file's relative paths point, and the files it uses when it names none.

    `base` is joined to every relative path written in policy.yaml; the defaults are used for
    keys left out. Chosen from where the policy file is (files.policy_files.layout_for).
    """

    name: str
    base: Path
    authorisations: Path
    ca_dir: Path
    audit_path: Path
    admin_htpasswd: Path | None = None  # the page's sign-ins when admin.htpasswd is not set

    @classmethod
    def checkout(cls, root: Path, name: str = "checkout") -> Layout:
        """config/, allowlists/ and var/ under `root` (today's layout of a git checkout)."""
        return cls(
            name=name,
            base=root,
            authorisations=root / DEFAULT_AUTHORISATIONS_PATH,
            ca_dir=root / DEFAULT_CA_DIR,
            audit_path=root / DEFAULT_AUDIT_PATH,
        )

    @classmethod
    def installed(cls, root: Path) -> Layout:
        """/etc/socialguard, /var/lib/socialguard and /var/log/socialguard under `root`."""
        return cls(
            name="installed",
            base=root / INSTALLED_ETC,
            authorisations=root / INSTALLED_AUTHORISATIONS,
            ca_dir=root / INSTALLED_CA_DIR,
            audit_path=root / INSTALLED_AUDIT_PATH,
            admin_htpasswd=root / INSTALLED_ADMIN_HTPASSWD,
        )


# No policy file at all: the embedded defaults, relative to the current directory.
CURRENT_DIRECTORY = Layout.checkout(Path(), name="current directory")

# Information sharing (Wikipedia and the like) is catalogued but not enforced by default: it is
# a reference that clinical and admin staff read for work, not the posting and networking the
# policy is about. A practice that wants it blocked adds it to `enforced_categories`.
DEFAULT_ENFORCED = tuple(c for c in CATEGORIES if c != "information-sharing")

DEFAULTS: dict[str, Any] = {
    "practice": {
        "name": "the practice",
        "contact": "the Practice Manager",
        "policy_url": None,
        "domains": [],
        # For the staff privacy notice and the record of processing: what only the practice
        # knows. Shown as "not set" until filled in.
        "data_protection_officer": None,
        "lawful_basis": None,
        "privacy_url": None,
    },
    # The practice's short name, stamped on every audit event so a central store that receives
    # many gateways' logs can tell them apart (e.g. riverside). None: no `site` field.
    "site": None,
    "listen": "0.0.0.0:8080",
    "upstream": None,
    "enforced_categories": list(DEFAULT_ENFORCED),
    "catalogs": [],
    "zones": [],
    "default_zone": "practice",
    "devices": {},
    "groups": {},
    "email_domains": [],
    # endpoints: the practice's own known endpoints file, added to the shipped one (SIGNUP.md).
    "signup_guard": {"hosts": [], "endpoints": None},
    "https_block": "refuse",
    "ca_dir": None,  # the layout's (var/ca in a checkout, /var/lib/socialguard/ca installed)
    "authorisations": None,  # the layout's (allowlists/authorisations.yaml in a checkout)
    # The console (the journal under systemd): "counts" carries no names, addresses or hosts;
    # "full" puts them back, for debugging.
    "console": "counts",
    "audit": {
        "path": None,  # the layout's (var/audit.jsonl in a checkout)
        "retention_days": 396,
        "record_paths": False,
        "hmac_key_file": None,
        # The proxy records from one thread (mitmproxy's event loop), one event at a time, so
        # group commit has nothing to gather there: it costs what fsync per event costs. It
        # helps only callers that record from several threads at once.
        "durability": "group",
        # Each recorded event waits this long before its sync, and the proxy (one event loop)
        # waits with it: every connection stalls. Keep 0 on the gateway.
        "group_commit_ms": 0,
        "rotate": "daily",
        "rotate_size_mb": 64,
        # Where copies of the log are sent (central logging), in words, for the privacy notice.
        "copies_to": [],
    },
    # ldap: staff sign in with their directory account (core/directory.py; docs/FLEET.md).
    "identity": {"proxyauth": None, "ldap": None},
    "metrics": {"listen": None},
    "timezone": "Europe/London",
    "exemptions": {"max_days": 366},
    # CONNECT only to these ports (Squid's default): anything else is a tunnel to anywhere.
    "connect_ports": [443],
    # Addresses the proxy may reach beyond its defaults (allow) and more it must refuse (deny).
    "destinations": {"allow": [], "deny": []},
    # A request head (or a tunnel's ClientHello) not complete within this is closed; and no
    # client address may hold more connections at once than this.
    "limits": {"header_timeout_seconds": 10, "connections_per_client": 256},
    "admin": ADMIN_DEFAULTS,
    "digest": DIGEST_DEFAULTS,
}
_SITE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
# The keys of each mapping in policy.yaml. A section's keys are its defaults' keys (add a key to
# DEFAULTS and it is known); a mapping of free names (devices, groups) has an empty default.
SECTION_KEYS: dict[str, frozenset[str]] = {
    key: frozenset(value) for key, value in DEFAULTS.items() if isinstance(value, dict) and value
}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakWindow:
    """Days of the week (0 = Monday) and a local time range when personal use is allowed."""

    days: frozenset[int]
    start: dt.time
    end: dt.time

    def is_open(self, local: dt.datetime) -> bool:
        return local.weekday() in self.days and self.start <= local.time() < self.end


@dataclass(frozen=True, slots=True, kw_only=True)
class Zone:
    """A network zone by subnet (e.g. staff, byod, guest) and its rest-break windows."""

    name: str
    networks: tuple[IPNetwork, ...]
    break_windows: tuple[BreakWindow, ...] = ()
    # Networks the proxy may not reach for a client of this zone (e.g. practice servers from
    # the personal-devices Wi-Fi).
    destinations_deny: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Practice:
    """Who the practice is and how staff ask for an exemption: shown on the block page."""

    name: str
    contact: str
    policy_url: str | None
    domains: tuple[str, ...]
    data_protection_officer: str | None = None
    lawful_basis: str | None = None
    privacy_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything IT sets in policy.yaml, validated."""

    practice: Practice
    site: str | None
    listen_host: str
    listen_port: int
    upstream: str | None
    enforced_categories: frozenset[str]
    catalogs: tuple[Path, ...]
    zones: tuple[Zone, ...]
    default_zone: str
    devices_by_ip: dict[str, str]
    groups_by_user: dict[str, frozenset[str]]
    groups: frozenset[str]
    email_domains: tuple[str, ...]
    signup_hosts: tuple[str, ...]
    # The practice's signup endpoints file (signup_guard.endpoints), and its key's line.
    signup_endpoints: Path | None = None
    signup_endpoints_line: int = 0
    https_block: str
    ca_dir: Path
    authorisations_path: Path
    authorisations_named: bool  # written in policy.yaml (not the layout's default)
    console: str
    layout: Layout
    audit_path: Path
    audit_retention_days: int
    audit_record_paths: bool
    audit_copies_to: tuple[str, ...]
    audit_hmac_key_file: Path | None
    audit_durability: str
    audit_group_commit_ms: float
    audit_rotate: str
    audit_rotate_size_mb: int
    proxyauth: str | None
    metrics_listen: str | None
    timezone: zoneinfo.ZoneInfo
    max_exemption_days: int
    ldap: LdapSettings | None = None
    connect_ports: frozenset[int] = frozenset({443})
    destinations: Destinations = Destinations()  # noqa: RUF009 - frozen, so one shared is safe
    header_timeout_seconds: float = 10.0
    connections_per_client: int = 256
    admin: AdminSettings = field(default_factory=AdminSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)

    @property
    def device_names(self) -> frozenset[str]:
        return frozenset(self.devices_by_ip.values())


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`) → (host, port); raises ValueError with a plain reason."""
    host, sep, port = str(value).rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT (for example 0.0.0.0:8080)")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - a gateway listens on all


def proxyauth_problem(spec: object) -> str | None:
    """Why a sign-in spec cannot be used, or None. Only specs that check a password are taken:
    mitmproxy's `any` admits every name with any password, and those unchecked names would then
    match exemptions."""
    fix = "write @/path/to/htpasswd (bcrypt: htpasswd -B) or an LDAP spec (ldap[s]:…)"
    if not isinstance(spec, str) or not spec.strip():
        return f"must be a sign-in spec — {fix}"
    if spec.strip().lower() == "any":
        return (
            "'any' lets anyone in under any name with any password (and those names would "
            f"match exemptions) — {fix}"
        )
    if spec.startswith("@"):
        return None if spec[1:].strip() else f"names no password file — {fix}"
    if spec.startswith(("ldap:", "ldaps:")):
        return None
    user, sep, password = spec.partition(":")
    if sep and user and password and ":" not in password:
        return None  # one user and their password, checked on every sign-in
    return f"{spec!r} is not a sign-in spec that checks a password — {fix}"


def _merge(defaults: dict[str, Any], data: LocatedDict) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in data.items():
        if isinstance(defaults.get(key), dict) and isinstance(value, dict):
            merged[key] = {**defaults[key], **value}
        else:
            merged[key] = value
    return merged


def _str_list(value: Any, where: str, line: int, problems: Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(line, f"{where}: must be a list of names, e.g. [a, b]")
        return ()
    return tuple(value)


BREAK_WINDOW_KEYS = frozenset({"days", "from", "to"})


def _break_windows(value: Any, where: str, line: int, problems: Problems) -> list[BreakWindow]:
    windows = []
    for i, item in enumerate(value or []):
        if not isinstance(item, dict):
            problems.add(line, f"{where}[{i}]: write {{days: mon-fri, from: '12:30', to: '13:30'}}")
            continue
        unknown_keys(item, BREAK_WINDOW_KEYS, f"{where}.break_windows[{i}]", problems)
        raw_days = item.get("days", "mon-fri")
        if isinstance(raw_days, list):
            raw_days = ",".join(str(d) for d in raw_days)
        days = _parse_days(str(raw_days).lower())
        start = _TIME.fullmatch(str(item.get("from", "")))
        end = _TIME.fullmatch(str(item.get("to", "")))
        if days is None or start is None or end is None:
            problems.add(
                getattr(item, "line", line),
                f"{where}[{i}]: days like mon-fri or [mon, wed] and times like '12:30' "
                "(quote them: YAML reads 12:30 as a number)",
            )
            continue
        start_t = dt.time(int(start[1]), int(start[2]))
        end_t = dt.time(int(end[1]), int(end[2]))
        if end_t <= start_t:
            problems.add(getattr(item, "line", line), f"{where}[{i}]: 'to' must be after 'from'")
            continue
        windows.append(BreakWindow(days=days, start=start_t, end=end_t))
    return windows


def _parse_days(text: str) -> frozenset[int] | None:
    days: set[int] = set()
    for part in text.strip("[]").replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in _WEEKDAYS or (last and last not in _WEEKDAYS):
            return None
        a = _WEEKDAYS.index(first)
        b = _WEEKDAYS.index(last) if last else a
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    return frozenset(days)


ZONE_KEYS = frozenset({"name", "subnets", "break_windows", "destinations"})


def _zones(value: Any, line: int, problems: Problems) -> tuple[Zone, ...]:
    if not isinstance(value, list):
        problems.add(line, "zones: must be a list of {name, subnets, break_windows}")
        return ()
    zones = []
    # Each subnet's first zone: the same subnet in two zones would make a device's zone depend
    # on the order of the file. Nested subnets are fine: the most specific one wins.
    claimed: dict[IPNetwork, tuple[str, int]] = {}
    for i, item in enumerate(value):
        item_line = getattr(item, "line", line)
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.add(item_line, f"zones[{i}]: needs a name and a list of subnets")
            continue
        unknown_keys(item, ZONE_KEYS, f"zones[{i}]", problems)
        networks = []
        for subnet in item.get("subnets") or []:
            try:
                network = ipaddress.ip_network(str(subnet), strict=False)
            except ValueError:
                problems.add(item_line, f"zones[{i}].subnets: {subnet!r} is not a subnet")
                continue
            first = claimed.setdefault(network, (item["name"], item_line))
            if first != (item["name"], item_line):
                problems.add(
                    item_line,
                    f"zones[{i}] ({item['name']}): subnet {network} is already in zone "
                    f"{first[0]!r} (line {first[1]}) — a subnet belongs to one zone; to carve "
                    "part of it out, give the other zone a smaller subnet inside it",
                )
                continue
            networks.append(network)
        windows = _break_windows(item.get("break_windows"), f"zones[{i}]", item_line, problems)
        deny: tuple[IPNetwork, ...] = ()
        zone_destinations = item.get("destinations")
        if zone_destinations is not None:
            if not isinstance(zone_destinations, dict) or set(zone_destinations) - {"deny"}:
                problems.add(
                    item_line, f"zones[{i}].destinations: write {{deny: [192.168.50.0/24]}}"
                )
            else:
                deny = _networks(
                    zone_destinations.get("deny"), f"zones[{i}].destinations.deny", item_line,
                    problems,
                )  # fmt: skip
        zones.append(
            Zone(
                name=item["name"],
                networks=tuple(networks),
                break_windows=tuple(windows),
                destinations_deny=deny,
            )
        )
    return tuple(zones)


def _networks(value: Any, where: str, line: int, problems: Problems) -> tuple[IPNetwork, ...]:
    """A list of CIDR networks (a bare address is its own /32 or /128)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add(line, f"{where}: must be a list of networks, e.g. [192.168.50.0/24]")
        return ()
    networks = []
    for item in value:
        try:
            networks.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            problems.add(line, f"{where}: {item!r} is not a network (write e.g. 10.1.2.0/24)")
    return tuple(networks)


def _connect_ports(value: Any, line: int, problems: Problems) -> frozenset[int]:
    if not isinstance(value, list) or not value or not all(_whole(p, 1, 65535) for p in value):
        problems.add(line, "connect_ports: must be a list of port numbers, e.g. [443]")
        return frozenset({443})
    return frozenset(value)


def _destinations(value: Any, raw: Any, line: int, problems: Problems) -> Destinations:
    where = raw.line_of if isinstance(raw, LocatedDict) else (lambda _key: line)
    for key in value:
        if key not in ("allow", "deny"):
            problems.add(where(key), f"destinations.{key}: unknown key (known: allow, deny)")
    return Destinations(
        allow=_networks(value.get("allow"), "destinations.allow", where("allow"), problems),
        deny=_networks(value.get("deny"), "destinations.deny", where("deny"), problems),
    )


def _limits(value: dict[str, Any], raw: Any, line: int, problems: Problems) -> dict[str, Any]:
    defaults: dict[str, Any] = DEFAULTS["limits"]
    limits = dict(value)
    where = raw.line_of if isinstance(raw, LocatedDict) else (lambda _key: line)
    for key in value:
        if key not in defaults:
            problems.add(
                where(key), f"limits.{key}: unknown key (known: {', '.join(sorted(defaults))})"
            )
    timeout = limits["header_timeout_seconds"]
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
        problems.add(
            where("header_timeout_seconds"),
            "limits.header_timeout_seconds: must be a number of seconds from 0 to 600, e.g. 10",
        )
        limits["header_timeout_seconds"] = defaults["header_timeout_seconds"]
    if not _whole(limits["connections_per_client"], 1, 100_000):
        problems.add(
            where("connections_per_client"),
            "limits.connections_per_client: must be a whole number, e.g. 256",
        )
        limits["connections_per_client"] = defaults["connections_per_client"]
    return limits


def _optional_text(section: dict[str, Any], key: str) -> str | None:
    value = section.get(key)
    return str(value).strip() or None if value is not None else None


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _audit(value: dict[str, Any], raw: Any, line: int, problems: Problems) -> dict[str, Any]:
    """The audit section, checked key by key; a bad value is reported and its default kept."""
    defaults: dict[str, Any] = DEFAULTS["audit"]
    audit = dict(value)
    where = raw.line_of if isinstance(raw, LocatedDict) else (lambda _key: line)

    def bad(key: str, message: str) -> None:
        problems.add(where(key), f"audit.{key}: {message}")
        audit[key] = defaults[key]

    if audit["path"] is not None and (not isinstance(audit["path"], str) or not audit["path"]):
        bad("path", "must be a file path, e.g. var/audit.jsonl")
    if not _whole(audit["retention_days"], 1, 36500):
        bad("retention_days", "must be a whole number of days, e.g. 396 (13 months)")
    if not isinstance(audit["record_paths"], bool):
        bad("record_paths", "must be true or false (false keeps URL paths out of the log)")
    key_file = audit["hmac_key_file"]
    if key_file is not None and (not isinstance(key_file, str) or not key_file):
        bad(
            "hmac_key_file",
            "must be the path of a file holding the key, e.g. /etc/socialguard/audit.key",
        )
    audit["hmac_key_file"] = Path(audit["hmac_key_file"]) if audit["hmac_key_file"] else None
    if audit["durability"] not in ("fsync", "group"):
        bad("durability", "must be 'fsync' (each event synced alone) or 'group' (group commit)")
    ms = audit["group_commit_ms"]
    if isinstance(ms, bool) or not isinstance(ms, int | float) or not 0 <= ms <= 20:
        bad(
            "group_commit_ms",
            "must be a number of milliseconds from 0 to 20; 0 (the default) is best: any "
            "wait holds up the whole proxy",
        )
    if audit["rotate"] == "never":
        # One file forever: retention deletes whole rotated files, so it would delete nothing.
        bad(
            "rotate",
            f"'never' keeps every event in one file, so retention "
            f"(audit.retention_days: {audit['retention_days']}) could never delete old events "
            "— write 'rotate: daily' (the default) or 'rotate: size' with rotate_size_mb",
        )
    elif audit["rotate"] not in ("daily", "size"):
        bad("rotate", "must be 'daily' or 'size' (see rotate_size_mb)")
    if not _whole(audit["rotate_size_mb"], 1, 100_000):
        bad("rotate_size_mb", "must be a whole number of megabytes, e.g. 64")
    copies = audit["copies_to"]
    if not isinstance(copies, list) or not all(isinstance(c, str) and c for c in copies):
        bad("copies_to", "must be a list of places in words, e.g. [the PCN's central log store]")
    return audit


def _where(raw: Any, line: int) -> Any:
    """The line of a key in a section, or of the section itself."""
    return raw.line_of if isinstance(raw, LocatedDict) else (lambda _key: line)


def _path_setting(value: Any, key: str, line: int, problems: Problems) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        problems.add(line, f"{key}: must be a file or folder path")
        return None
    return Path(value)


def parse_settings(data: Any, source: str, layout: Layout = CURRENT_DIRECTORY) -> Settings:
    """Validate policy.yaml's data (None for an absent or empty file) over the defaults.

    Relative paths written in the file are joined to `layout.base`; paths left out are the
    layout's defaults.
    """
    problems = Problems(source)
    if data is None:
        data = LocatedDict()
        data.key_lines = {}
    if not isinstance(data, LocatedDict):
        problems.add(1, "policy.yaml must be a mapping of settings (key: value)")
        problems.raise_if_any()
    unknown_keys(data, DEFAULTS, "", problems, noun="setting", see="config/policy.yaml")
    for key, known in SECTION_KEYS.items():
        section = data.get(key)
        if isinstance(section, dict):
            unknown_keys(section, known, key, problems)
    merged = _merge(DEFAULTS, data)
    line = data.line_of
    for key, default in DEFAULTS.items():
        if default and isinstance(default, dict) and not isinstance(merged[key], dict):
            example = next(iter(default))
            problems.add(line(key), f"{key}: must be a mapping, e.g. {key}: {{{example}: ...}}")
            merged[key] = default

    try:
        listen_host, listen_port = parse_listen(merged["listen"])
    except ValueError as error:
        problems.add(line("listen"), f"listen: {error}")
        listen_host, listen_port = "0.0.0.0", 8080  # noqa: S104
    enforced = _str_list(
        merged["enforced_categories"], "enforced_categories", line("enforced_categories"), problems
    )
    for category in enforced:
        if category not in CATEGORIES:
            problems.add(
                line("enforced_categories"),
                f"enforced_categories: unknown category {category!r} "
                f"(known: {', '.join(CATEGORIES)})",
            )
    devices_by_ip: dict[str, str] = {}
    devices = merged["devices"] or {}
    if not isinstance(devices, dict):
        problems.add(line("devices"), "devices: must map a device name to its IP address")
        devices = {}
    for name, address in devices.items():
        try:
            devices_by_ip[str(unmapped(ipaddress.ip_address(str(address))))] = str(name)
        except ValueError:
            problems.add(line("devices"), f"devices.{name}: {address!r} is not an IP address")
    groups_by_user: dict[str, set[str]] = {}
    groups = merged["groups"] or {}
    if not isinstance(groups, dict):
        problems.add(line("groups"), "groups: must map a group name to a list of user names")
        groups = {}
    for group, members in groups.items():
        for user in _str_list(members, f"groups.{group}", line("groups"), problems):
            groups_by_user.setdefault(user, set()).add(str(group))
    https_block = str(merged["https_block"])
    if https_block not in ("refuse", "page"):
        problems.add(line("https_block"), "https_block: must be 'refuse' or 'page'")
    try:
        timezone = zoneinfo.ZoneInfo(str(merged["timezone"]))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.add(line("timezone"), f"timezone: unknown zone {merged['timezone']!r}")
        timezone = zoneinfo.ZoneInfo("Europe/London")
    audit = _audit(merged["audit"], data.get("audit"), line("audit"), problems)
    limits = _limits(merged["limits"], data.get("limits"), line("limits"), problems)
    practice = merged["practice"]
    base = layout.base
    ca_dir = _path_setting(merged["ca_dir"], "ca_dir", line("ca_dir"), problems)
    authorisations = _path_setting(
        merged["authorisations"], "authorisations", line("authorisations"), problems
    )
    console = merged["console"]
    if console not in CONSOLE_MODES:
        problems.add(
            line("console"),
            "console: must be 'counts' (no names, addresses or hosts on the console or in the "
            "journal) or 'full' (everything, for debugging)",
        )
        console = "counts"
    proxyauth = merged["identity"].get("proxyauth")
    if proxyauth is not None:
        problem = proxyauth_problem(proxyauth)
        if problem:
            identity = data.get("identity")
            at = identity.line_of("proxyauth") if isinstance(identity, LocatedDict) else 0
            problems.add(at or line("identity"), f"identity.proxyauth: {problem}")
            proxyauth = None
    if isinstance(proxyauth, str) and proxyauth.startswith("@"):
        proxyauth = "@" + str(base / proxyauth[1:])
    max_days = merged["exemptions"].get("max_days")
    if not isinstance(max_days, int) or max_days < 1:
        problems.add(line("exemptions"), "exemptions.max_days: must be a whole number of days")
        max_days = 366
    site = merged["site"]
    if site is not None and (not isinstance(site, str) or not _SITE.fullmatch(site)):
        problems.add(
            line("site"),
            f"site: {site!r} must be a short name in lower case letters, digits, '.', '-' or "
            "'_' (e.g. site: riverside), the same on every reload",
        )
        site = None
    identity = merged["identity"]
    identity_raw = data.get("identity")
    identity_line = (
        identity_raw.line_of
        if isinstance(identity_raw, LocatedDict)
        else (lambda _k: line("identity"))
    )
    ldap = parse_ldap(identity.get("ldap"), identity_line("ldap"), source, problems)
    if ldap is not None:
        # Relative paths in policy.yaml are relative to its base folder, as every other one.
        ldap = dataclasses.replace(
            ldap,
            ca_file=base / ldap.ca_file,
            bind_password_file=base / ldap.bind_password_file,
        )
    if ldap is not None and identity.get("proxyauth"):
        problems.add(
            identity_line("proxyauth"),
            "identity: proxyauth and ldap are both set — staff sign in one way: keep ldap "
            "(directory accounts) or proxyauth (an htpasswd file), not both",
        )
    signup_at = _where(data.get("signup_guard"), line("signup_guard"))
    signup_endpoints = _path_setting(
        merged["signup_guard"].get("endpoints"),
        "signup_guard.endpoints",
        signup_at("endpoints"),
        problems,
    )
    settings = Settings(
        ldap=ldap,
        site=site,
        practice=Practice(
            name=str(practice.get("name")),
            contact=str(practice.get("contact")),
            policy_url=practice.get("policy_url"),
            domains=_str_list(
                practice.get("domains"), "practice.domains", line("practice"), problems
            ),
            data_protection_officer=_optional_text(practice, "data_protection_officer"),
            lawful_basis=_optional_text(practice, "lawful_basis"),
            privacy_url=_optional_text(practice, "privacy_url"),
        ),
        listen_host=listen_host,
        listen_port=listen_port,
        upstream=merged["upstream"],
        enforced_categories=frozenset(enforced),
        catalogs=tuple(
            base / p for p in _str_list(merged["catalogs"], "catalogs", line("catalogs"), problems)
        ),
        zones=_zones(merged["zones"], line("zones"), problems),
        default_zone=str(merged["default_zone"]),
        devices_by_ip=devices_by_ip,
        groups_by_user={u: frozenset(g) for u, g in groups_by_user.items()},
        # A directory group mapped under identity.ldap.groups is a group exemptions may name.
        groups=frozenset(str(g) for g in groups)
        | frozenset(ldap.groups.values() if ldap is not None else ()),
        email_domains=_str_list(
            merged["email_domains"], "email_domains", line("email_domains"), problems
        ),
        signup_hosts=_str_list(
            merged["signup_guard"].get("hosts"),
            "signup_guard.hosts",
            line("signup_guard"),
            problems,
        ),
        signup_endpoints=base / signup_endpoints if signup_endpoints is not None else None,
        signup_endpoints_line=signup_at("endpoints") if signup_endpoints is not None else 0,
        https_block=https_block,
        ca_dir=base / ca_dir if ca_dir is not None else layout.ca_dir,
        authorisations_path=(
            base / authorisations if authorisations is not None else layout.authorisations
        ),
        authorisations_named=authorisations is not None,
        console=console,
        layout=layout,
        audit_path=base / audit["path"] if audit["path"] else layout.audit_path,
        audit_retention_days=audit["retention_days"],
        audit_record_paths=audit["record_paths"],
        audit_copies_to=tuple(audit["copies_to"]),
        audit_hmac_key_file=(
            base / audit["hmac_key_file"] if audit["hmac_key_file"] is not None else None
        ),
        audit_durability=audit["durability"],
        audit_group_commit_ms=audit["group_commit_ms"],
        audit_rotate=audit["rotate"],
        audit_rotate_size_mb=audit["rotate_size_mb"],
        proxyauth=proxyauth,
        metrics_listen=merged["metrics"].get("listen"),
        timezone=timezone,
        max_exemption_days=max_days,
        connect_ports=_connect_ports(merged["connect_ports"], line("connect_ports"), problems),
        destinations=_destinations(
            merged["destinations"], data.get("destinations"), line("destinations"), problems
        ),
        header_timeout_seconds=float(limits["header_timeout_seconds"]),
        connections_per_client=limits["connections_per_client"],
        admin=parse_admin(merged["admin"], _where(data.get("admin"), line("admin")), problems),
        digest=parse_digest(merged["digest"], _where(data.get("digest"), line("digest")), problems),
    )
    problems.raise_if_any()
    return settings
