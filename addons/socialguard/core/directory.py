"""`identity.ldap` in policy.yaml: staff sign in with their directory (Active Directory or
OpenLDAP) account, and the directory's groups become socialguard groups.

Pure: checks the shape only. Whether the CA and password files exist is checked where files
are read (files/policy_files.py); the directory itself is asked only by the proxy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socialguard.core.problems import LocatedDict, Problems

# Every key an `identity.ldap` section may hold, with its meaning for the "unknown key" message.
LDAP_KEYS = (
    "url",
    "starttls",
    "ca_file",
    "bind_dn",
    "bind_password_file",
    "base_dn",
    "user_filter",
    "groups",
    "timeout_seconds",
)
_REQUIRED = ("url", "ca_file", "bind_dn", "bind_password_file", "base_dn", "user_filter")
_EXAMPLES = {
    "url": "ldaps://dc1.practice.example",
    "ca_file": "/etc/socialguard/directory-ca.pem",
    "bind_dn": '"CN=socialguard,OU=Service Accounts,DC=practice,DC=example"',
    "bind_password_file": "/etc/socialguard/directory.pw",
    "base_dn": '"DC=practice,DC=example"',
    "user_filter": '"(sAMAccountName={user})"',
}


@dataclass(frozen=True, slots=True, kw_only=True)
class LdapSettings:
    """How the proxy checks a staff member's password against the directory.

    `lines` keeps where each key was written, so a missing file is reported at its line.
    """

    url: str
    host: str
    port: int
    use_ssl: bool
    starttls: bool
    ca_file: Path
    bind_dn: str
    bind_password_file: Path
    base_dn: str
    user_filter: str
    groups: dict[str, str]  # directory group DN (lower case) → socialguard group
    timeout_seconds: float
    source: str
    lines: dict[str, int]


def _host_port(url: str) -> tuple[str, int, bool] | None:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("ldap", "ldaps"):
        return None
    rest = rest.rstrip("/")
    if not rest or "/" in rest or "?" in rest:
        return None
    use_ssl = scheme.lower() == "ldaps"
    host, colon, port = rest.rpartition(":")
    if colon and port.isdigit() and host and not host.endswith(":"):
        number = int(port)
        if not 0 < number < 65536:
            return None
        return host.strip("[]"), number, use_ssl
    return rest.strip("[]"), 636 if use_ssl else 389, use_ssl


def parse_ldap(value: Any, line: int, source: str, problems: Problems) -> LdapSettings | None:
    """`identity.ldap`, checked key by key; None (with problems added) when unusable."""
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.add(line, "identity.ldap: must be a mapping of url, ca_file, bind_dn, … ")
        return None
    where = value.line_of if isinstance(value, LocatedDict) else (lambda _key: line)
    lines = {key: where(key) for key in value}
    ok = True

    def bad(key: str, message: str) -> None:
        nonlocal ok
        problems.add(where(key), f"identity.ldap.{key}: {message}")
        ok = False

    for key in value:
        if key not in LDAP_KEYS:
            bad(key, f"unknown key (known: {', '.join(LDAP_KEYS)})")
    for key in _REQUIRED:
        if not isinstance(value.get(key), str) or not value[key].strip():
            problems.add(
                where(key) if key in value else line,
                f"identity.ldap.{key}: required, e.g. {key}: {_EXAMPLES[key]}",
            )
            ok = False
    starttls = value.get("starttls", False)
    if not isinstance(starttls, bool):
        bad("starttls", "must be true or false")
        starttls = False
    parsed = _host_port(str(value.get("url", "")))
    if isinstance(value.get("url"), str) and parsed is None:
        bad(
            "url",
            f"{value['url']!r} is not ldaps://HOST[:PORT] (or ldap://HOST[:PORT] with "
            "starttls: true)",
        )
    elif parsed is not None and not parsed[2] and not starttls:
        bad(
            "url",
            "ldap:// sends staff passwords unencrypted — use ldaps://, or add starttls: true "
            "(the server's certificate is then checked with ca_file either way)",
        )
    elif parsed is not None and parsed[2] and starttls:
        bad("starttls", "ldaps:// is already encrypted — remove starttls, or use ldap://")
    user_filter = value.get("user_filter")
    if isinstance(user_filter, str) and user_filter.strip():
        if "{user}" not in user_filter:
            bad(
                "user_filter",
                "must contain {user}, where the sign-in name goes, e.g. "
                "(sAMAccountName={user}) for Active Directory or (uid={user}) for OpenLDAP",
            )
        elif not (user_filter.startswith("(") and user_filter.endswith(")")):
            bad("user_filter", "must be an LDAP filter in brackets, e.g. (uid={user})")
    groups: dict[str, str] = {}
    raw_groups = value.get("groups", {}) or {}
    if not isinstance(raw_groups, dict):
        bad("groups", 'must map a directory group to a socialguard group, e.g. "CN=…": reception')
    else:
        for dn, group in raw_groups.items():
            if not isinstance(group, str) or not group.strip() or "=" not in str(dn):
                bad(
                    "groups",
                    f"{dn!r}: write the group's full name (its memberOf value) and a "
                    'socialguard group, e.g. "CN=Reception,OU=Groups,DC=practice,DC=example": '
                    "reception",
                )
                continue
            groups[_normal_dn(str(dn))] = group.strip()
    timeout = value.get("timeout_seconds", 3)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 30:
        bad("timeout_seconds", "must be a whole number of seconds from 1 to 30 (default 3)")
        timeout = 3
    if not ok or parsed is None:
        return None
    return LdapSettings(
        url=str(value["url"]),
        host=parsed[0],
        port=parsed[1],
        use_ssl=parsed[2],
        starttls=starttls,
        ca_file=Path(value["ca_file"]),
        bind_dn=str(value["bind_dn"]),
        bind_password_file=Path(value["bind_password_file"]),
        base_dn=str(value["base_dn"]),
        user_filter=str(value["user_filter"]),
        groups=groups,
        timeout_seconds=float(timeout),
        source=source,
        lines=lines,
    )


def _normal_dn(dn: str) -> str:
    """A DN compared as directories do: case and the spaces after commas do not matter."""
    return ",".join(part.strip() for part in dn.split(",")).lower()


def groups_of(ldap: LdapSettings, member_of: list[str]) -> frozenset[str]:
    """The socialguard groups a directory user is in, from their `memberOf` values."""
    return frozenset(g for dn in member_of if (g := ldap.groups.get(_normal_dn(dn))) is not None)
