"""The practice's own signup endpoints file, read as part of the policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialguard.core.problems import ConfigError
from socialguard.files.policy_files import PolicyPaths, load_policy
from socialguard.files.signup_file import embedded_endpoints, embedded_endpoints_path

POLICY = """\
email_domains: [nhs.net]
signup_guard:
  hosts: [supplies.example]
  endpoints: {path}
"""
ENDPOINTS = """\
sites:
  riverside-supplies:
    name: Riverside Medical Supplies
    hosts: [supplies.example]
    checked: 2027-01-10
    registration: [/trade/apply]
"""


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, so no default authorisation list is found."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOCIALGUARD_CONFIG", raising=False)
    return tmp_path


def policy_beside(folder: Path, endpoints: str | None = ENDPOINTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "policy.yaml"
    config.write_text(POLICY.format(path="signup-endpoints.yaml"))
    if endpoints is not None:
        (folder / "signup-endpoints.yaml").write_text(endpoints)
    return config


def test_a_relative_path_is_read_beside_the_policy_file(nowhere: Path) -> None:
    """Read as other policy paths are (here: beside a policy file outside config/)."""
    config = policy_beside(nowhere / "gateway")
    policy = load_policy(PolicyPaths(config, None))
    own = nowhere / "gateway" / "signup-endpoints.yaml"
    assert policy.settings.signup_endpoints == own
    first = policy.signup_endpoints[0]
    assert (first.site_id, first.source, first.line) == ("riverside-supplies", str(own), 6)
    # The shipped sites are all still there, after the practice's own.
    assert policy.signup_endpoints[1:] == embedded_endpoints()


def test_in_a_checkout_it_is_read_from_the_checkout(nowhere: Path) -> None:
    checkout = nowhere / "checkout"
    (checkout / "config").mkdir(parents=True)
    config = checkout / "config" / "policy.yaml"
    config.write_text(POLICY.format(path="config/signup-endpoints.yaml"))
    (checkout / "config" / "signup-endpoints.yaml").write_text(ENDPOINTS)
    policy = load_policy(PolicyPaths(config, None))
    assert policy.signup_endpoints[0].source == str(checkout / "config/signup-endpoints.yaml")


def test_without_the_setting_the_shipped_endpoints_are_used(nowhere: Path) -> None:
    config = nowhere / "policy.yaml"
    config.write_text("email_domains: [nhs.net]\nsignup_guard: {hosts: [amazon.co.uk]}\n")
    policy = load_policy(PolicyPaths(config, None))
    assert policy.settings.signup_endpoints is None
    assert policy.signup_endpoints == embedded_endpoints()
    assert {e.source for e in policy.signup_endpoints} == {str(embedded_endpoints_path())}


def test_the_file_is_part_of_the_policys_digest(nowhere: Path) -> None:
    """An edit changes the digest, so a running proxy takes it (and every event says so)."""
    config = policy_beside(nowhere)
    before = load_policy(PolicyPaths(config, None)).digest
    (nowhere / "signup-endpoints.yaml").write_text(ENDPOINTS.replace("/trade/apply", "/trade/new"))
    assert load_policy(PolicyPaths(config, None)).digest != before


def test_a_missing_file_is_named_at_the_line_that_names_it(nowhere: Path) -> None:
    config = policy_beside(nowhere, endpoints=None)
    with pytest.raises(ConfigError) as caught:
        load_policy(PolicyPaths(config, None))
    [problem] = caught.value.problems
    assert (problem.source, problem.line) == (str(config), 4)
    assert problem.message.startswith(
        f"signup_guard.endpoints: {nowhere / 'signup-endpoints.yaml'} does not exist — write "
        "the practice's endpoints file there"
    )
    assert f"a relative path is read from {nowhere}" in problem.message


def test_its_problems_are_reported_with_the_other_files(nowhere: Path) -> None:
    """Validated as a whole: a bad endpoints file and a bad authorisation list, both listed."""
    config = policy_beside(nowhere, ENDPOINTS.replace("/trade/apply", "trade/apply"))
    listed = nowhere / "authorisations.yaml"
    listed.write_text("approvers: [practice.manager]\nexemptions: 5\n")
    with pytest.raises(ConfigError) as caught:
        load_policy(PolicyPaths(config, listed))
    where = {(p.source, p.line) for p in caught.value.problems}
    assert (str(nowhere / "signup-endpoints.yaml"), 6) in where
    assert str(listed) in {source for source, _line in where}


def test_a_file_that_is_not_yaml_names_its_line(nowhere: Path) -> None:
    config = policy_beside(nowhere, "sites:\n  shop: {hosts: [a.example\n")
    with pytest.raises(ConfigError) as caught:
        load_policy(PolicyPaths(config, None))
    [problem] = caught.value.problems
    assert problem.source == str(nowhere / "signup-endpoints.yaml")
    assert "not valid YAML" in problem.message


@pytest.mark.parametrize("value", ["''", "[a, b]", "5"])
def test_the_setting_must_be_a_path(nowhere: Path, value: str) -> None:
    config = nowhere / "policy.yaml"
    config.write_text(f"signup_guard:\n  hosts: [a.example]\n  endpoints: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_policy(PolicyPaths(config, None))
    assert [(p.line, p.message.split(":")[0]) for p in caught.value.problems] == [
        (3, "signup_guard.endpoints")
    ]
