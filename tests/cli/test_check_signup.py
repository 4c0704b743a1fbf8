"""`socialguard check --signup`: the signup guard's answer for one request, and why."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from socialguard.cli.app import main
from tests.conftest import PRACTICE_ENDPOINTS

POLICY = """\
email_domains: [nhs.net]
signup_guard:
  hosts: [etsy.com, amazon.co.uk]
"""


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    config = tmp_path / "policy.yaml"
    config.write_text(POLICY)
    today = dt.datetime.now(dt.UTC).date()
    authorisations = tmp_path / "authorisations.yaml"
    authorisations.write_text(
        "approvers: [practice.manager]\n"
        "exemptions:\n"
        "  - id: EX-2026-010\n"
        "    who: {user: p.manager}\n"
        "    domains: [amazon.co.uk]\n"
        "    purpose: Run the practice's Amazon Business account for supplies\n"
        "    approved_by: practice.manager\n"
        f"    approved_on: {today}\n"
        f"    expires: {today + dt.timedelta(days=300)}\n"
    )
    return ["--config", str(config), "--authorisations", str(authorisations)]


def check(files: list[str], *args: str) -> Result:
    return CliRunner().invoke(main, ["check", *files, *args])


def test_a_sign_in_is_let_through_and_says_why(files: list[str]) -> None:
    said = check(files, "--signup", "http://www.etsy.com/signin",
                 "--body", "email=sam.jones%40nhs.net&password=pw")  # fmt: skip
    assert said.exit_code == 0, said.output
    assert said.output.startswith("www.etsy.com/signin: Let through: it carries an address at "
                                  "nhs.net, but nothing says it creates an account")  # fmt: skip
    assert "rule: not_registration" in said.output


@pytest.mark.parametrize(
    ("url", "body", "rule", "why"),
    [
        ("https://www.etsy.com/join", "email=a%40nhs.net", "known_endpoint",
         "Etsy's registration endpoint /join (checked 1 December 2026)"),
        ("https://www.etsy.com/api/people", "email=a%40nhs.net&password_confirm=x",
         "password_confirmation", "asks for a new password twice ('password_confirm')"),
        ("https://www.etsy.com/graphql", '{"operationName": "SignUp", "email": "a@nhs.net"}',
         "graphql_mutation", "GraphQL operation 'SignUp'"),
    ],
)  # fmt: skip
def test_a_registration_names_the_rule_and_why(
    files: list[str], url: str, body: str, rule: str, why: str
) -> None:
    said = check(files, "--signup", url, "--body", body)
    assert said.exit_code == 0, said.output
    assert why in said.output
    assert f"rule: {rule}" in said.output
    coded = json.loads(check(files, "--signup", url, "--body", body, "--json").output)
    assert (coded["refused"], coded["rule"], coded["work_domain"]) == (True, rule, "nhs.net")


def test_a_saved_request_is_read(files: list[str], tmp_path: Path) -> None:
    """A request saved from the browser's tools: its own path and content type are used."""
    saved = tmp_path / "request.txt"
    saved.write_bytes(
        b"POST /ap/register?openid=1 HTTP/1.1\r\nHost: www.amazon.co.uk\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        b"customerName=Jo&email=jo%40nhs.net&password=x"
    )
    said = check(files, "--signup", "www.amazon.co.uk", "--request", str(saved), "--json")
    assert said.exit_code == 0, said.output
    assert json.loads(said.output)["rule"] == "known_endpoint"


def test_an_exemption_naming_the_site_is_shown(files: list[str]) -> None:
    """The practice's Amazon Business account: its holder's registration is let through."""
    args = ["--signup", "https://www.amazon.co.uk/ap/register", "--body", "email=pm%40nhs.net"]
    said = check(files, "--user", "p.manager", *args)
    assert "but exemption EX-2026-010 names this site for p.manager" in said.output
    assert (
        json.loads(check(files, "--user", "p.manager", "--json", *args).output)["exemption_id"]
        == "EX-2026-010"
    )
    assert json.loads(check(files, "--user", "j.smith", "--json", *args).output)["refused"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--body", "x=1", "www.etsy.com"], "--body and --request go with --signup URL"),
        ([], "name a TARGET"),
        (["--signup", "www.etsy.com/join", "www.etsy.com"], "explains one request"),
    ],
)
def test_usage_mistakes_are_usage_errors(files: list[str], args: list[str], message: str) -> None:
    said = check(files, *args)
    assert said.exit_code == 2
    assert message in said.output


def test_a_file_that_is_not_a_request_names_its_line(files: list[str], tmp_path: Path) -> None:
    saved = tmp_path / "notes.txt"
    saved.write_text("some notes\n")
    said = check(files, "--signup", "www.etsy.com/join", "--request", str(saved))
    assert said.exit_code == 1
    assert f"{saved}:1: not an HTTP request" in said.output
    assert "Traceback" not in said.output


# -- the practice's own endpoints file ---------------------------------------------------------

PRACTICE_POLICY = """\
email_domains: [nhs.net]
signup_guard:
  hosts: [supplies.example, etsy.com]
  endpoints: signup-endpoints.yaml
"""


@pytest.fixture
def practice(tmp_path: Path) -> tuple[list[str], Path]:
    config = tmp_path / "policy.yaml"
    config.write_text(PRACTICE_POLICY)
    endpoints = tmp_path / "signup-endpoints.yaml"
    endpoints.write_text(PRACTICE_ENDPOINTS)
    return ["--config", str(config)], endpoints


def test_a_rule_from_the_practices_file_names_the_file_and_line(
    practice: tuple[list[str], Path],
) -> None:
    files, endpoints = practice
    args = ["--signup", "http://supplies.example/trade/apply", "--body", "email=jo%40nhs.net"]
    said = check(files, *args)
    assert said.exit_code == 0, said.output
    assert "Riverside Medical Supplies's registration endpoint /trade/apply" in said.output
    assert "rule: known_endpoint" in said.output
    assert (
        f"from: {endpoints}:7, sites.riverside-supplies (the practice's own file, "
        "signup_guard.endpoints)"
    ) in said.output
    coded = json.loads(check(files, *args, "--json").output)
    assert coded["refused"]
    assert coded["endpoint"] == {
        "site": "riverside-supplies",
        "file": str(endpoints),
        "line": 7,
        "practice": True,
    }


def test_a_shipped_rule_says_it_is_shipped(practice: tuple[list[str], Path]) -> None:
    files, _ = practice
    said = check(files, "--signup", "https://www.etsy.com/join", "--body", "email=a%40nhs.net")
    assert ", sites.etsy (shipped with socialguard)" in said.output
    assert "data/signup_endpoints.yaml:" in said.output


def test_validate_checks_the_practices_file(practice: tuple[list[str], Path]) -> None:
    """Good: listed among the files checked. Broken: every problem at its line, exit 1."""
    files, endpoints = practice
    good = CliRunner().invoke(main, ["validate", *files])
    assert good.exit_code == 0, good.output
    assert f"{endpoints} — " in good.output
    endpoints.write_text(PRACTICE_ENDPOINTS.replace("checked: 2027-01-10", "checked: soon"))
    bad = CliRunner().invoke(main, ["validate", *files])
    assert bad.exit_code == 1
    assert (
        f"{endpoints}:5: sites.riverside-supplies.checked: the day the endpoints were checked, "
        "written like 2026-12-01"
    ) in bad.output
    assert "Traceback" not in bad.output
    # `check --signup` answers from a valid policy only.
    refused = check(files, "--signup", "supplies.example/trade/apply", "--body", "e=a%40nhs.net")
    assert refused.exit_code == 1
    assert f"{endpoints}:5:" in refused.output
