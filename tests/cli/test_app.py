"""The command line: check and validate, through click's runner (no proxy)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from socialguard.cli.app import host_of, main

AUTHORISATIONS = """approvers: [practice.manager]
exemptions:
  - id: EX-2026-001
    who: {user: j.smith}
    services: [facebook]
    purpose: Maintain the practice Facebook page
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31
"""


@pytest.fixture
def authorisations(tmp_path: Path) -> Path:
    path = tmp_path / "authorisations.yaml"
    path.write_text(AUTHORISATIONS)
    return path


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("https://www.facebook.com/page?x=1", "www.facebook.com"),
        ("http://user:pw@fb.me:8080/", "fb.me:8080"),
        ("www.tiktok.com/@someone", "www.tiktok.com"),
        ("nhs.uk", "nhs.uk"),
    ],
)
def test_host_of_targets(target: str, host: str) -> None:
    """A URL's host (with port) or a bare host is what gets decided."""
    assert host_of(target) == host


def test_check_json_in_input_order(authorisations: Path) -> None:
    """check --json prints one object per target, in order, with the decision's fields."""
    result = CliRunner().invoke(
        main,
        ["check", "--authorisations", str(authorisations), "--json", "--user", "j.smith",
         "--at", "2026-12-01T10:00", "https://www.facebook.com/", "www.tiktok.com", "nhs.uk"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["host"], r["action"], r["reason"]) for r in rows] == [
        ("www.facebook.com", "allow", "exemption"),
        ("www.tiktok.com", "block", "not_authorised"),
        ("nhs.uk", "allow", "never_block"),
    ]
    assert rows[0]["exemption_id"] == "EX-2026-001"
    assert rows[1]["service"] == "tiktok"
    assert rows[1]["category"] == "social-networking"


def test_check_after_expiry_names_it(authorisations: Path) -> None:
    """After the last day of the exemption, check blocks and says it expired."""
    result = CliRunner().invoke(
        main,
        ["check", "--authorisations", str(authorisations), "--user", "j.smith",
         "--at", "2027-11-01T00:00", "www.facebook.com"],
    )  # fmt: skip
    assert result.exit_code == 0
    assert "exemption EX-2026-001 expired on 31 October 2027" in result.output


def test_check_reads_standard_input_and_repeats_hosts(authorisations: Path) -> None:
    """`-` reads one target per line; repeated hosts get the same answer each time."""
    targets = ["www.reddit.com", "example.org", "www.reddit.com", "", "bad host"]
    result = CliRunner().invoke(
        main,
        ["check", "--authorisations", str(authorisations), "--json", "-"],
        input="\n".join(targets) + "\n",
    )
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["target"] for r in rows] == ["www.reddit.com", "example.org", "www.reddit.com",
                                           "bad host"]  # fmt: skip
    assert [r["action"] for r in rows] == ["block", "allow", "block", "block"]
    assert rows[3]["reason"] == "malformed_host"


def test_check_bad_time_is_usage_error(authorisations: Path) -> None:
    """A time that is not ISO 8601 is a usage error (exit 2) naming --at."""
    result = CliRunner().invoke(
        main, ["check", "--authorisations", str(authorisations), "--at", "lunchtime", "x.com"]
    )
    assert result.exit_code == 2
    assert "--at" in result.output


def test_validate_ok(authorisations: Path) -> None:
    """A valid list validates with exit 0 and a summary."""
    result = CliRunner().invoke(main, ["validate", "--authorisations", str(authorisations)])
    assert result.exit_code == 0
    assert "1 exemptions" in result.output


def test_validate_lists_every_problem_without_traceback(tmp_path: Path) -> None:
    """An invalid list exits 1 and names file and line of each problem."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        AUTHORISATIONS.replace(
            "approved_by: practice.manager", "approved_by: someone.else"
        ).replace("services: [facebook]", "services: [made-up-network]")
    )
    result = CliRunner().invoke(main, ["validate", "--authorisations", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:5: exemptions[0] (EX-2026-001).services: unknown service 'made-up-network'" in (
        result.output
    )
    assert f"{bad}:7: exemptions[0] (EX-2026-001).approved_by: 'someone.else'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_validate_missing_file(tmp_path: Path) -> None:
    """A named file that does not exist is an error, not a silent fall-back to defaults."""
    result = CliRunner().invoke(main, ["validate", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "not found" in result.output


def test_run_on_a_busy_port_says_so_before_recording_anything(tmp_path: Path) -> None:
    """A second proxy on the same port is a plain message and exit 1, and writes no event."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        audit = tmp_path / "audit.jsonl"
        result = CliRunner().invoke(
            main, ["run", "--listen", f"127.0.0.1:{port}", "--audit-log", str(audit)]
        )
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "--listen HOST:PORT" in result.output
    assert "Traceback" not in result.output
    assert not audit.exists()


def test_check_speaks_in_sentences_and_json_keeps_the_codes(authorisations: Path) -> None:
    """People read sentences; scripts read --json, whose reason codes are the contract."""
    targets = ["www.facebook.com", "www.tiktok.com", "nhs.uk", "www.wikipedia.org", "example.org"]
    base = ["check", "--authorisations", str(authorisations), "--user", "j.smith",
            "--at", "2026-12-01T10:00"]  # fmt: skip
    said = CliRunner().invoke(main, [*base, *targets])
    assert said.exit_code == 0, said.output
    assert said.output.splitlines() == [
        "www.facebook.com: Allowed: Facebook (social networking) under exemption EX-2026-001 "
        "(Maintain the practice Facebook page), until 31 October 2027.",
        "www.tiktok.com: Blocked: TikTok (social networking) needs an exemption from the "
        "Practice Manager, and none applies to this person or device.",
        "nhs.uk: Allowed: it is on the never-block list (clinical and practice sites).",
        "www.wikipedia.org: Allowed: Wikipedia is information sharing, which this practice "
        "does not block.",
        "example.org: Allowed: it is not a social media site in the catalogue.",
    ]
    for code in ("not_authorised", "never_block", "category_not_enforced", "not_social_media"):
        assert code not in said.output
    coded = CliRunner().invoke(main, [*base, "--json", *targets])
    reasons = [json.loads(line)["reason"] for line in coded.output.splitlines()]
    assert reasons == [
        "exemption", "not_authorised", "never_block", "category_not_enforced", "not_social_media"
    ]  # fmt: skip


def test_check_at_a_uk_date_and_time(authorisations: Path) -> None:
    """--at takes the date as people in the UK write it; the last day of an exemption holds."""
    base = ["check", "--authorisations", str(authorisations), "--user", "j.smith", "--json"]
    for at, action in (("31/10/2027 23:59", "allow"), ("1 November 2027 00:00", "block")):
        result = CliRunner().invoke(main, [*base, "--at", at, "www.facebook.com"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["action"] == action
