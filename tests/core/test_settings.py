"""Tests for socialguard.core.settings: policy.yaml laid over the defaults and validated whole."""

from __future__ import annotations

import datetime as dt
import ipaddress
import textwrap
import zoneinfo
from pathlib import Path

import pytest

from socialguard.core.catalog import CATEGORIES
from socialguard.core.problems import ConfigError
from socialguard.core.settings import (
    DEFAULT_AUDIT_PATH,
    BreakWindow,
    Settings,
    parse_listen,
    parse_settings,
    proxyauth_problem,
)
from socialguard.files.policy_files import load_settings
from socialguard.files.yamlfile import parse_yaml

DEFAULT = parse_settings(None, "<defaults>")
LONDON = zoneinfo.ZoneInfo("Europe/London")
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the documented default, not a bind


def settings_from(text: str) -> Settings:
    return parse_settings(parse_yaml(textwrap.dedent(text), "policy.yaml"), "policy.yaml")


def problems_of(text: str) -> list[tuple[int, str]]:
    with pytest.raises(ConfigError) as caught:
        settings_from(text)
    assert all(p.source == "policy.yaml" for p in caught.value.problems)
    return [(p.line, p.message) for p in caught.value.problems]


def test_defaults() -> None:
    """With no file, the embedded defaults apply."""
    assert DEFAULT.listen_host == ALL_INTERFACES
    assert DEFAULT.listen_port == 8080
    assert DEFAULT.https_block == "refuse"
    assert DEFAULT.timezone.key == "Europe/London"
    assert DEFAULT.max_exemption_days == 366
    assert DEFAULT.audit_path == DEFAULT_AUDIT_PATH
    assert DEFAULT.audit_retention_days == 396
    assert DEFAULT.audit_record_paths is False
    assert DEFAULT.zones == ()
    assert DEFAULT.default_zone == "practice"
    assert DEFAULT.devices_by_ip == {}
    assert DEFAULT.groups == frozenset()
    assert DEFAULT.upstream is None
    assert DEFAULT.proxyauth is None
    assert DEFAULT.practice.contact == "the Practice Manager"


def test_information_sharing_not_enforced_by_default() -> None:
    """Every category except information-sharing is enforced by default."""
    assert "information-sharing" not in DEFAULT.enforced_categories
    assert DEFAULT.enforced_categories == frozenset(CATEGORIES) - {"information-sharing"}


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file_means_defaults(text: str) -> None:
    """An empty policy.yaml gives exactly the defaults."""
    assert settings_from(text) == DEFAULT


@pytest.mark.parametrize(
    ("text", "attribute", "value"),
    [
        ("listen: '127.0.0.1:3128'", "listen_port", 3128),
        ("listen: '127.0.0.1:3128'", "listen_host", "127.0.0.1"),
        ("https_block: page", "https_block", "page"),
        ("timezone: Europe/Dublin", "timezone", "Europe/Dublin"),
        ("upstream: 'http://proxy.example:8080'", "upstream", "http://proxy.example:8080"),
        ("default_zone: staff", "default_zone", "staff"),
        ("exemptions: {max_days: 90}", "max_exemption_days", 90),
        ("audit: {retention_days: 30}", "audit_retention_days", 30),
        ("audit: {record_paths: true}", "audit_record_paths", True),
        ("audit: {path: /var/log/sg.jsonl}", "audit_path", Path("/var/log/sg.jsonl")),
        ("enforced_categories: [dating]", "enforced_categories", frozenset({"dating"})),
        ("email_domains: [nhs.net]", "email_domains", ("nhs.net",)),
        ("signup_guard: {hosts: [a.example]}", "signup_hosts", ("a.example",)),
        ("identity: {proxyauth: '@/etc/htpasswd'}", "proxyauth", "@/etc/htpasswd"),
        ("metrics: {listen: '127.0.0.1:9100'}", "metrics_listen", "127.0.0.1:9100"),
        ("catalogs: [config/extra.yaml]", "catalogs", (Path("config/extra.yaml"),)),
    ],
)
def test_one_key_overrides_only_that_key(text: str, attribute: str, value: object) -> None:
    """A file with one key changes just that setting; every other setting keeps its default."""
    settings = settings_from(text + "\n")
    got = getattr(settings, attribute)
    if attribute == "timezone":
        got = got.key
    assert got == value
    for name in Settings.__dataclass_fields__:
        if name != attribute and not (text.startswith("listen") and name.startswith("listen")):
            assert getattr(settings, name) == getattr(DEFAULT, name), name


def test_nested_mapping_merges_with_defaults() -> None:
    """practice: with only a name keeps the default contact."""
    settings = settings_from("practice: {name: Riverside Surgery}\n")
    assert settings.practice.name == "Riverside Surgery"
    assert settings.practice.contact == DEFAULT.practice.contact
    assert settings.practice.policy_url is None


def test_unknown_key_is_an_error_with_line() -> None:
    """An unknown setting is reported at its line."""
    found = problems_of("listen: '0.0.0.0:8080'\n\nlisten_port: 3128\n")
    assert found == [
        (3, "unknown setting 'listen_port' — did you mean 'listen'? (see config/policy.yaml)")
    ]


@pytest.mark.parametrize(
    ("value", "host", "port"),
    [
        (f"{ALL_INTERFACES}:8080", ALL_INTERFACES, 8080),
        (":3128", ALL_INTERFACES, 3128),
        ("[::1]:8080", "::1", 8080),
        ("localhost:1", "localhost", 1),
        ("10.0.0.1:65535", "10.0.0.1", 65535),
    ],
)
def test_parse_listen(value: str, host: str, port: int) -> None:
    """parse_listen reads HOST:PORT and [v6]:PORT."""
    assert parse_listen(value) == (host, port)


@pytest.mark.parametrize(
    "value", ["8080", ALL_INTERFACES, "0.0.0.0:0", "0.0.0.0:65536", "host:http", "x:-1"]
)
def test_parse_listen_rejects(value: str) -> None:
    """parse_listen rejects anything but HOST:PORT with a port in 1..65535."""
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_listen(value)


@pytest.mark.parametrize("value", ["8080", "'0.0.0.0:99999'", "'nohost'"])
def test_bad_listen(value: str) -> None:
    """A bad listen value is a problem at its line."""
    found = problems_of(f"practice: {{name: X}}\nlisten: {value}\n")
    assert len(found) == 1
    assert found[0][0] == 2
    assert found[0][1].startswith("listen: ")


@pytest.mark.parametrize("value", ["block", "Refuse", "true"])
def test_bad_https_block(value: str) -> None:
    """https_block must be refuse or page."""
    assert problems_of(f"https_block: {value}\n") == [
        (1, "https_block: must be 'refuse' or 'page'")
    ]


@pytest.mark.parametrize("value", ["Mars/Olympus", "Europe", "'../etc/passwd'", "''", "GMT+25"])
def test_bad_timezone(value: str) -> None:
    """An unknown time zone is a problem at its line."""
    found = problems_of(f"\ntimezone: {value}\n")
    assert len(found) == 1
    assert found[0][0] == 2
    assert found[0][1].startswith("timezone: unknown zone")


def test_unknown_enforced_category() -> None:
    """An enforced category that the catalogue does not have is a problem."""
    [(line, message)] = problems_of("enforced_categories: [dating, gaming]\n")
    assert line == 1
    assert "unknown category 'gaming'" in message


def test_devices_and_groups() -> None:
    """Devices are indexed by normalised address; groups by member."""
    settings = settings_from(
        """
        devices:
          reception-pc-1: 10.10.0.21
          nurse-laptop: "2001:DB8::5"
        groups:
          reception: [a.brown, c.davis]
          admin: [a.brown]
        """
    )
    assert settings.devices_by_ip == {"10.10.0.21": "reception-pc-1", "2001:db8::5": "nurse-laptop"}
    assert settings.device_names == frozenset({"reception-pc-1", "nurse-laptop"})
    assert settings.groups == frozenset({"reception", "admin"})
    assert settings.groups_by_user == {
        "a.brown": frozenset({"reception", "admin"}),
        "c.davis": frozenset({"reception"}),
    }


def test_bad_device_address_and_group_members() -> None:
    """A device that is not an IP and a group that is not a list are both reported."""
    found = problems_of(
        """\
        devices:
          pc: not-an-ip
        groups:
          reception: a.brown
        """
    )
    assert found == [
        (1, "devices.pc: 'not-an-ip' is not an IP address"),
        (3, "groups.reception: must be a list of names, e.g. [a, b]"),
    ]


ZONES = """\
zones:
  - name: staff
    subnets: [10.10.0.0/24]
  - name: byod
    subnets: [10.20.0.0/24, "2001:db8:20::/64"]
    break_windows:
      - {days: mon-fri, from: "12:30", to: "13:30"}
      - {days: sat-sun, from: "09:00", to: "17:00"}
      - {days: "fri-mon", from: "7:05", to: "07:10"}
"""


def test_zones_with_break_windows() -> None:
    """Zones keep their subnets and break windows; day ranges may wrap the week."""
    staff, byod = settings_from(ZONES).zones
    assert staff.name == "staff"
    assert staff.networks == (ipaddress.ip_network("10.10.0.0/24"),)
    assert staff.break_windows == ()
    assert byod.networks[1] == ipaddress.ip_network("2001:db8:20::/64")
    assert byod.break_windows == (
        BreakWindow(days=frozenset(range(5)), start=dt.time(12, 30), end=dt.time(13, 30)),
        BreakWindow(days=frozenset({5, 6}), start=dt.time(9), end=dt.time(17)),
        BreakWindow(days=frozenset({4, 5, 6, 0}), start=dt.time(7, 5), end=dt.time(7, 10)),
    )


@pytest.mark.parametrize(
    ("local", "is_open"),
    [
        (dt.datetime(2026, 11, 23, 12, 29, 59, tzinfo=LONDON), False),  # Monday
        (dt.datetime(2026, 11, 23, 12, 30, tzinfo=LONDON), True),
        (dt.datetime(2026, 11, 23, 13, 29, 59, tzinfo=LONDON), True),
        (dt.datetime(2026, 11, 23, 13, 30, tzinfo=LONDON), False),
        (dt.datetime(2026, 11, 28, 12, 45, tzinfo=LONDON), False),  # Saturday
    ],
)
def test_break_window_is_open(local: dt.datetime, is_open: bool) -> None:
    """A window is open on its days from its start (inclusive) to its end (exclusive)."""
    window = BreakWindow(days=frozenset(range(5)), start=dt.time(12, 30), end=dt.time(13, 30))
    assert window.is_open(local) is is_open


@pytest.mark.parametrize(
    ("window", "hint"),
    [
        ("{days: mon-fri, from: 12:30, to: 13:30}", "quote them"),
        ("{days: mon-fri, from: '25:00', to: '26:00'}", "quote them"),
        ("{days: someday, from: '12:30', to: '13:30'}", "days like mon-fri"),
        ("{days: mon-fri, from: '13:30', to: '12:30'}", "'to' must be after 'from'"),
        ("{days: mon-fri, from: '12:30', to: '12:30'}", "'to' must be after 'from'"),
        ("lunchtime", "write {days: mon-fri"),
    ],
)
def test_bad_break_windows(window: str, hint: str) -> None:
    """Unquoted or impossible times, bad days and empty windows are problems with a hint."""
    text = (
        "zones:\n  - name: byod\n    subnets: [10.20.0.0/24]\n"
        f"    break_windows:\n      - {window}\n"
    )
    found = problems_of(text)
    assert len(found) == 1
    assert hint in found[0][1]
    assert found[0][1].startswith("zones[0]")


def test_bad_zones() -> None:
    """A zone without a name and a subnet that is not one are both reported."""
    found = problems_of(
        "zones:\n  - subnets: [10.0.0.0/8]\n  - name: x\n    subnets: [10.0.0.300/24]\n"
    )
    assert found == [
        (2, "zones[0]: needs a name and a list of subnets"),
        (3, "zones[1].subnets: '10.0.0.300/24' is not a subnet"),
    ]


def test_zones_must_be_a_list() -> None:
    """zones: given as a mapping is a problem."""
    assert problems_of("zones: {staff: 10.0.0.0/8}\n") == [
        (1, "zones: must be a list of {name, subnets, break_windows}")
    ]


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ("audit: {retention_days: 0}", "audit.retention_days"),
        ("audit: {retention_days: soon}", "audit.retention_days"),
        ("exemptions: {max_days: -1}", "exemptions.max_days"),
        ("metrics: '127.0.0.1:9100'", "metrics: must be a mapping"),
        ("identity: htpasswd", "identity: must be a mapping"),
        ("email_domains: nhs.net", "email_domains: must be a list"),
        ("catalogs: [1, 2]", "catalogs: must be a list"),
        ("devices: [a, b]", "devices: must map"),
        ("groups: [a, b]", "groups: must map"),
    ],
)
def test_bad_values_are_problems(text: str, prefix: str) -> None:
    """Values of the wrong type or range are problems at their line."""
    found = problems_of("# header\n" + text + "\n")
    assert len(found) == 1
    assert found[0][0] == 2
    assert found[0][1].startswith(prefix)


def test_every_problem_is_reported_at_once() -> None:
    """Several bad settings give one ConfigError listing each with its line."""
    found = problems_of("listen: nope\nhttps_block: x\ntimezone: Nowhere/Land\ncolour: red\n")
    assert sorted(line for line, _ in found) == [1, 2, 3, 4]


@pytest.mark.parametrize("data", ["- a\n", "just text\n"])
def test_settings_must_be_a_mapping(data: str) -> None:
    """A policy.yaml that is not a mapping is one problem on line 1."""
    assert problems_of(data)[0][0] == 1


def test_break_window_days_as_yaml_list() -> None:
    """days: [mon, wed] (a YAML list) means Monday and Wednesday."""
    settings = settings_from(
        "zones:\n  - name: byod\n    subnets: [10.20.0.0/24]\n    break_windows:\n"
        "      - {days: [mon, wed], from: '12:30', to: '13:30'}\n"
    )
    assert settings.zones[0].break_windows[0].days == frozenset({0, 2})


@pytest.mark.parametrize(
    "text", ["audit: 5", "practice: Riverside", "exemptions: 5", "signup_guard: [a]"]
)
def test_non_mapping_sections_are_problems(text: str) -> None:
    """A section that should be a mapping but is not is a problem at its line, not a crash."""
    found = problems_of(text + "\n")
    assert found[0][0] == 1


def test_load_settings(tmp_path: Path) -> None:
    """load_settings(None) gives the defaults; a file gives its settings and raw bytes."""
    settings, raw = load_settings(None)
    assert settings == DEFAULT
    assert raw == b""
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"https_block: page\n")
    settings, raw = load_settings(path)
    assert settings.https_block == "page"
    assert raw == b"https_block: page\n"


def test_the_same_subnet_in_two_zones_is_a_problem_at_the_second() -> None:
    """A device's zone must not depend on the order of the file: one subnet, one zone."""
    found = problems_of(
        "zones:\n"
        "  - {name: surgery, subnets: [10.0.0.0/24]}\n"
        "  - {name: wifi, subnets: ['10.0.0.7/24']}\n"
    )
    assert len(found) == 1
    line, message = found[0]
    assert line == 3
    assert "10.0.0.0/24 is already in zone 'surgery' (line 2)" in message


def test_nested_subnets_are_allowed() -> None:
    """A smaller subnet inside another zone's is how part of a network is carved out."""
    settings = settings_from(
        "zones:\n"
        "  - {name: practice, subnets: [10.0.0.0/16]}\n"
        "  - {name: byod, subnets: [10.0.20.0/24]}\n"
    )
    assert [z.name for z in settings.zones] == ["practice", "byod"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            'identity:\n  proxyath: "@/etc/socialguard/htpasswd"\n',
            2,
            "identity: unknown key 'proxyath' — did you mean 'proxyauth'? (known: ldap, proxyauth)",
        ),
        (
            "metrics:\n  listne: 127.0.0.1:9100\n",
            2,
            "metrics: unknown key 'listne' — did you mean 'listen'?",
        ),
        (
            "practice:\n  nmae: Oak Surgery\n",
            2,
            "practice: unknown key 'nmae' — did you mean 'name'?",
        ),
        (
            "signup_guard:\n  host: [x.example]\n",
            2,
            "signup_guard: unknown key 'host' — did you mean 'hosts'?",
        ),
        (
            "exemptions:\n  max_day: 30\n",
            2,
            "exemptions: unknown key 'max_day' — did you mean 'max_days'?",
        ),
        (
            "zones:\n  - name: staff\n    subnets: [10.0.0.0/24]\n    breaks: []\n",
            4,
            "zones[0]: unknown key 'breaks' — did you mean 'break_windows'?",
        ),
        (
            "zones:\n  - name: byod\n    break_windows:\n"
            "      - {days: mon-fri, from: '12:30', too: '13:30'}\n",
            4,
            "zones[0].break_windows[0]: unknown key 'too' — did you mean 'to'?",
        ),
        ("identty:\n  proxyauth: any\n", 1, "unknown setting 'identty' — did you mean 'identity'?"),
    ],
)
def test_an_unknown_key_at_any_depth_is_refused_with_the_nearest_name(
    text: str, line: int, message: str
) -> None:
    """A misspelt key one level down is not ignored: `identity: {proxyath: …}` would otherwise
    validate and run the proxy with no sign-in at all."""
    found = problems_of(text)
    assert any(ln == line and m.startswith(message) for ln, m in found), found


def test_free_names_under_devices_and_groups_are_not_keys() -> None:
    settings = settings_from("devices:\n  reception-pc: 10.0.0.5\ngroups:\n  admin: [a.b]\n")
    assert settings.devices_by_ip == {"10.0.0.5": "reception-pc"}


@pytest.mark.parametrize(
    "spec", ["any", "ANY", "", "alice:", ":secret", "nonsense", "@", "a:b:c", 3]
)
def test_a_sign_in_spec_that_checks_no_password_is_refused(spec: object) -> None:
    """`proxyauth: any` admits any name with any password (names that match exemptions)."""
    found = problems_of(f"identity:\n  proxyauth: {spec!r}\n")
    assert len(found) == 1, found
    assert found[0][0] == 2
    assert found[0][1].startswith("identity.proxyauth: ")
    assert "htpasswd" in found[0][1]


@pytest.mark.parametrize(
    "spec", ["@/etc/socialguard/htpasswd", "ldaps:ldap.example:cn=x:pw:ou=staff", "alice:pw"]
)
def test_sign_in_specs_that_check_a_password_are_taken(spec: str) -> None:
    assert proxyauth_problem(spec) is None
    assert settings_from(f"identity:\n  proxyauth: {spec!r}\n").proxyauth == spec


def test_connect_ports_destinations_and_limits_are_read() -> None:
    text = (
        "connect_ports: [443, 8443]\n"
        "destinations: {allow: [10.1.2.0/24], deny: [192.168.50.0/24]}\n"
        "zones:\n  - name: byod\n    subnets: [10.20.0.0/24]\n"
        "    destinations: {deny: [10.10.0.0/24]}\n"
        "limits: {header_timeout_seconds: 2, connections_per_client: 9}\n"
    )
    settings = parse_settings(parse_yaml(text, "policy.yaml"), "policy.yaml")
    assert settings.connect_ports == frozenset({443, 8443})
    assert [str(n) for n in settings.destinations.allow] == ["10.1.2.0/24"]
    assert [str(n) for n in settings.destinations.deny] == ["192.168.50.0/24"]
    assert [str(n) for n in settings.zones[0].destinations_deny] == ["10.10.0.0/24"]
    assert (settings.header_timeout_seconds, settings.connections_per_client) == (2.0, 9)
    defaults = parse_settings(None, "policy.yaml")
    assert defaults.connect_ports == frozenset({443})
    assert defaults.destinations.allow == ()


def test_bad_connect_ports_and_destinations_name_the_line() -> None:
    text = "practice: {name: x}\nconnect_ports: [http]\ndestinations: {allow: [nope], other: 1}\n"
    with pytest.raises(ConfigError) as raised:
        parse_settings(parse_yaml(text, "policy.yaml"), "policy.yaml")
    message = str(raised.value)
    assert "policy.yaml:2: connect_ports" in message
    assert "policy.yaml:3: destinations.other: unknown key" in message
    assert "'nope' is not a network" in message
