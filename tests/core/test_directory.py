"""identity.ldap in policy.yaml: the shape the issue gives is accepted, mistakes are named with
their line and fix, and the directory's groups become groups exemptions may name."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from socialguard.core.directory import groups_of
from socialguard.core.problems import ConfigError
from socialguard.core.settings import Settings, parse_settings
from socialguard.files.policy_files import load_settings
from socialguard.files.yamlfile import parse_yaml

GOOD = """\
identity:
  ldap:
    url: ldaps://dc1.practice.example
    ca_file: /etc/socialguard/directory-ca.pem
    bind_dn: "CN=socialguard,OU=Service Accounts,DC=practice,DC=example"
    bind_password_file: /etc/socialguard/directory.pw
    base_dn: "DC=practice,DC=example"
    user_filter: "(sAMAccountName={user})"
    groups:
      "CN=Reception,OU=Groups,DC=practice,DC=example": reception
"""


def settings_from(text: str) -> Settings:
    return parse_settings(parse_yaml(textwrap.dedent(text), "policy.yaml"), "policy.yaml")


def problems_of(text: str) -> list[tuple[int, str]]:
    with pytest.raises(ConfigError) as caught:
        settings_from(text)
    return [(p.line, p.message) for p in caught.value.problems]


def test_the_issues_shape_is_accepted() -> None:
    ldap = settings_from(GOOD).ldap
    assert ldap is not None
    assert (ldap.host, ldap.port, ldap.use_ssl, ldap.starttls) == (
        "dc1.practice.example",
        636,
        True,
        False,
    )
    assert ldap.timeout_seconds == 3
    assert "reception" in settings_from(GOOD).groups  # an exemption may name it


def test_member_of_maps_to_groups_whatever_the_case_and_spacing() -> None:
    ldap = settings_from(GOOD).ldap
    assert ldap is not None
    member_of = ["cn=reception, ou=groups, dc=practice, dc=example", "CN=Other,DC=x"]
    assert groups_of(ldap, member_of) == frozenset({"reception"})
    assert groups_of(ldap, []) == frozenset()


def test_starttls_makes_ldap_url_acceptable() -> None:
    text = GOOD.replace("ldaps://dc1.practice.example", "ldap://dc1.practice.example:389")
    assert any("unencrypted" in m for _, m in problems_of(text))
    ldap = settings_from(text.replace("  ldap:\n", "  ldap:\n    starttls: true\n")).ldap
    assert ldap is not None
    assert ldap.starttls
    assert ldap.port == 389


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ("(sAMAccountName={user})", "(sAMAccountName=someone)", 8, "must contain {user}"),
        ("ldaps://dc1.practice.example", "https://dc1", 3, "is not ldaps://"),
        ('    base_dn: "DC=practice,DC=example"\n', "", 2, "base_dn: required"),
        ("    groups:\n", "    colour: blue\n    groups:\n", 9, "unknown key"),
        (": reception", ": ''", 9, "write the group's full name"),
    ],
)
def test_mistakes_are_named_with_line_and_fix(old: str, new: str, line: int, words: str) -> None:
    found = problems_of(GOOD.replace(old, new))
    assert any(n == line and words in m for n, m in found), found


def test_both_ldap_and_htpasswd_is_refused() -> None:
    text = GOOD.replace("identity:\n", "identity:\n  proxyauth: '@/etc/htpasswd'\n")
    assert any("both set" in m for _, m in problems_of(text))


def test_missing_ca_and_password_files_are_reported_at_their_lines(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(GOOD)
    with pytest.raises(ConfigError) as caught:
        load_settings(policy)
    found = [(p.line, p.message) for p in caught.value.problems]
    assert [n for n, _ in found] == [4, 6]
    assert "does not exist" in found[0][1]
    ca, password = tmp_path / "ca.pem", tmp_path / "pw"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n")
    password.write_text("secret\n")
    policy.write_text(
        GOOD.replace("/etc/socialguard/directory-ca.pem", str(ca)).replace(
            "/etc/socialguard/directory.pw", str(password)
        )
    )
    settings, _raw = load_settings(policy)
    assert settings.ldap is not None
