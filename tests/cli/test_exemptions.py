"""`socialguard exemptions …` through click's CliRunner, at a fixed instant."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from socialguard.cli import exemptions as cli_exemptions
from socialguard.cli.app import main

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

LIST = """\
# Authorisations for business use of social media.
# Kept by the Practice Manager; reviewed every year.
approvers: [practice.manager, deputy.manager]   # who may approve

exemptions:
  # The practice page
  - id: EX-2026-001
    who: {user: j.smith}
    services: [facebook]
    purpose: Maintain the practice Facebook page
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31   # end of October
  - id: EX-2025-004
    who: {user: k.jones}
    services: [facebook]
    purpose: Run the flu clinic campaign page
    approved_by: practice.manager
    approved_on: 2025-10-01
    expires: 2026-09-30
  - id: EX-2026-002
    who: {user: a.nother}
    services: [youtube]
    purpose: Upload the practice's health videos
    approved_by: practice.manager
    approved_on: 2026-06-01
    expires: 2026-12-10
  - id: EX-2026-003
    who: {user: m.patel}
    services: [linkedin]
    purpose: Post vacancies on the practice LinkedIn page
    approved_by: practice.manager
    approved_on: 2026-09-01
    expires: 2027-08-31
    revoked: {on: 2026-10-01, by: practice.manager, reason: Vacancy filled}
# Ask the Practice Manager before adding anything here.
"""
POLICY = """\
groups:
  reception: [a.brown, c.davis]
devices:
  reception-pc-1: 10.10.0.21
audit:
  path: {audit}
"""


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_exemptions, "now", lambda: NOW)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """An authorisation list and a policy.yaml naming groups, devices and the audit log."""
    listed = tmp_path / "authorisations.yaml"
    listed.write_text(LIST)
    config = tmp_path / "policy.yaml"
    config.write_text(POLICY.format(audit=tmp_path / "audit.jsonl"))
    return listed, config


def invoke(files: tuple[Path, Path], *args: str) -> Result:
    listed, config = files
    command = [*args, "--authorisations", str(listed), "--config", str(config)]
    return CliRunner().invoke(main, ["exemptions", *command])


def grant(files: tuple[Path, Path], *args: str) -> Result:
    return invoke(
        files,
        "grant",
        "--purpose",
        "Post vacancies on the practice LinkedIn page",
        "--approved-by",
        "practice.manager",
        *args,
    )


def last_entry(listed: Path) -> str:
    return listed.read_text().split("  - id: ")[-1]


def test_grant_adds_an_entry_and_keeps_every_comment(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grant appends EX-2026-004, says what it did, and leaves the rest of the file alone."""
    listed, _ = files
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setattr(cli_exemptions, "system_user", lambda: "pm")
    result = grant(files, "--user", "m.patel", "--service", "linkedin", "--until", "2027-02-28")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("granted EX-2026-004: user m.patel may use linkedin until 28")
    footer = "# Ask the Practice Manager before adding anything here.\n"
    assert (
        listed.read_text()
        == LIST.removesuffix(footer)
        + (
            "  - id: EX-2026-004\n"
            "    who: {user: m.patel}\n"
            "    services: [linkedin]\n"
            "    purpose: Post vacancies on the practice LinkedIn page\n"
            "    approved_by: practice.manager\n"
            "    approved_on: 2026-11-24\n"
            "    expires: 2027-02-28\n"
            "    recorded_by: {system_user: pm}\n"
        )
        + footer
    )


def test_a_grant_records_who_ran_it_beside_the_approver(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The approver is who said yes; the system user (and the sudo user) is who typed it. The
    list keeps both, and the proxy's exemption.granted event carries them."""
    listed, _ = files
    monkeypatch.setenv("SUDO_USER", "j.admin")
    monkeypatch.setattr(cli_exemptions, "system_user", lambda: "root")
    result = grant(files, "--user", "m.patel", "--service", "linkedin", "--until", "2027-02-28")
    assert result.exit_code == 0, result.output
    assert "approved by practice.manager, recorded by root (sudo from j.admin)" in result.output
    assert "    recorded_by: {system_user: root, sudo_user: j.admin}\n" in last_entry(listed)
    listing = json.loads(invoke(files, "list", "--json").output)
    assert [r["recorded_by"] for r in listing if r["id"] == "EX-2026-004"] == [
        "root (sudo from j.admin)"
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--group", "reception", "--service", "linkedin"], "who: {group: reception}"),
        (["--device", "reception-pc-1", "--service", "linkedin"], "who: {device: reception-pc-1}"),
        (["--user", "m.patel", "--category", "dating"], "categories: [dating]"),
        (["--user", "m.patel", "--domain", "example.org"], "domains: [example.org]"),
        (
            ["--user", "m.patel", "--service", "linkedin", "--service", "facebook"],
            "services: [linkedin, facebook]",
        ),
    ],
)
def test_grant_who_and_what(files: tuple[Path, Path], args: list[str], expected: str) -> None:
    """--group and --device work as --user does; --category and --domain as --service does."""
    result = grant(files, *args, "--until", "2027-02-28")
    assert result.exit_code == 0, result.output
    assert expected in last_entry(files[0])


def test_grant_json_prints_the_id(files: tuple[Path, Path]) -> None:
    """--json gives a script the new id."""
    result = grant(files, "--user", "m.patel", "--service", "linkedin", "--for", "2h", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"id": "EX-2026-004", "warnings": []}


def test_invalid_grant_is_refused_and_the_file_is_untouched(files: tuple[Path, Path]) -> None:
    """Every problem is listed with file and line, exit 1, no traceback, nothing written."""
    listed, _ = files
    result = invoke(
        files,
        "grant",
        "--user",
        "m.patel",
        "--service",
        "myspace-classic",
        "--purpose",
        "test",
        "--approved-by",
        "j.smith",
        "--until",
        "2028-06-30",
    )
    assert result.exit_code == 1
    assert "nothing was written" in result.output
    assert f"{listed}:38: exemptions[4] (EX-2026-004).services: unknown service" in result.output
    assert "'test' does not say what the business purpose is" in result.output
    assert "'j.smith' is not on the approvers list" in result.output
    assert "more than 366 days after approval" in result.output
    assert "Traceback" not in result.output
    assert listed.read_text() == LIST


def test_unknown_group_is_refused(files: tuple[Path, Path]) -> None:
    """A group that policy.yaml does not define cannot be granted anything."""
    result = grant(files, "--group", "nurses", "--service", "linkedin", "--until", "2027-01-31")
    assert result.exit_code == 1
    assert "group 'nurses' is not defined under groups: in policy.yaml" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service", "linkedin", "--until", "2027-01-31"], "exactly one of --user"),
        (["--user", "a", "--group", "reception", "--service", "linkedin"], "exactly one of"),
        (["--user", "m.patel", "--until", "2027-01-31"], "--service, --category or --domain"),
        (["--user", "m.patel", "--service", "linkedin"], "say until when"),
        (
            ["--user", "m.patel", "--service", "linkedin", "--until", "2027-01-31", "--for", "2h"],
            "not both",
        ),
        (["--from-event", "SG-X", "--user", "m.patel", "--for", "2h"], "--from-event grants"),
        (["--user", "m.patel", "--service", "linkedin", "--for", "soon"], "not a length of time"),
        (["--user", "m.patel", "--service", "linkedin", "--until", "2026-11-23"], "in the past"),
        (["--user", "m.patel", "--service", "linkedin", "--until", "09:30"], "already passed"),
        (["--user", "m.patel", "--service", "linkedin", "--until", "next week"], "not a date"),
    ],
)
def test_usage_errors_exit_2(files: tuple[Path, Path], args: list[str], message: str) -> None:
    """Wrong usage is click's exit 2, with a message saying what to write."""
    result = grant(files, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert files[0].read_text() == LIST


@pytest.mark.parametrize(
    ("now", "args", "written", "expires_utc"),
    [
        # Winter: --for 2h from 10:00 GMT.
        (
            NOW,
            ["--for", "2h"],
            "2026-11-24 12:00:00+00:00",
            dt.datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
        ),
        # --until a time today, in summer: 17:00 BST is 16:00 UTC.
        (
            dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
            ["--until", "17:00"],
            "2026-07-01 17:00:00+01:00",
            dt.datetime(2026, 7, 1, 16, 0, tzinfo=UTC),
        ),
        # The night the clocks go back, 01:00-02:00 happens twice: the offset says which.
        (
            dt.datetime(2026, 10, 25, 0, 10, tzinfo=UTC),
            ["--for", "30m"],
            "2026-10-25 01:40:00+01:00",
            dt.datetime(2026, 10, 25, 0, 40, tzinfo=UTC),
        ),
        (
            dt.datetime(2026, 10, 25, 0, 40, tzinfo=UTC),
            ["--for", "1h"],
            "2026-10-25 01:40:00+00:00",
            dt.datetime(2026, 10, 25, 1, 40, tzinfo=UTC),
        ),
        # The night the clocks go forward.
        (
            dt.datetime(2027, 3, 28, 0, 30, tzinfo=UTC),
            ["--for", "90m"],
            "2027-03-28 03:00:00+01:00",
            dt.datetime(2027, 3, 28, 2, 0, tzinfo=UTC),
        ),
        (NOW, ["--until", "2026-11-24 18:30"], "2026-11-24 18:30:00+00:00", None),
    ],
)
def test_short_exemptions_end_at_an_exact_instant(
    files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    now: dt.datetime,
    args: list[str],
    written: str,
    expires_utc: dt.datetime | None,
) -> None:
    """--for and --until a time are written with their UTC offset: no clock change moves them."""
    monkeypatch.setattr(cli_exemptions, "now", lambda: now)
    result = grant(files, "--user", "m.patel", "--service", "linkedin", *args)
    assert result.exit_code == 0, result.output
    assert f"    expires: {written}\n" in last_entry(files[0])
    listed = invoke(files, "list", "--json")
    (entry,) = [e for e in json.loads(listed.stdout) if e["who"] == "m.patel"]
    if expires_utc is not None:
        assert dt.datetime.fromisoformat(entry["expires"]) == expires_utc


# -- --from-event ---------------------------------------------------------------------------


def write_audit(path: Path, *events: dict[str, object]) -> None:
    base = {"ts": "2026-11-24T09:00:00.000Z", "client_ip": "10.10.0.50", "zone": "practice"}
    path.write_text("".join(json.dumps({**base, **e}) + "\n" for e in events))


BLOCKED = {
    "event": "access.blocked",
    "id": "SG-7KQ2MX4PHT",
    "user": "m.patel",
    "device": None,
    "host": "www.linkedin.com",
    "service": "linkedin",
    "category": "social-networking",
    "reason": "not_authorised",
}


@pytest.fixture
def audit(files: tuple[Path, Path]) -> Path:
    path = files[0].parent / "audit.jsonl"
    write_audit(
        path,
        {"event": "policy.loaded", "id": "SG-AAAAAAAAAA"},
        BLOCKED,
        {**BLOCKED, "id": "SG-DEV2222222", "user": "anonymous", "device": "reception-pc-1"},
        {**BLOCKED, "id": "SG-ANON333333", "user": "anonymous"},
        {**BLOCKED, "id": "SG-MAL4444444", "service": None, "reason": "malformed_host"},
        {**BLOCKED, "id": "SG-OK55555555", "event": "access.exception"},
    )
    return path


def from_event(files: tuple[Path, Path], reference: str, *args: str) -> Result:
    return grant(files, "--from-event", reference, "--for", "2h", *args)


def test_from_event_grants_exactly_who_and_which_service(
    files: tuple[Path, Path], audit: Path
) -> None:
    """The block's reference is enough: that person, that service, nothing more."""
    result = from_event(files, "SG-7KQ2MX4PHT")
    assert result.exit_code == 0, result.output
    assert "(from event SG-7KQ2MX4PHT): user m.patel may use linkedin" in result.output
    entry = last_entry(files[0])
    assert "who: {user: m.patel}\n    services: [linkedin]\n    purpose:" in entry
    assert "categories" not in entry
    assert "domains" not in entry


def test_from_event_reads_a_lower_case_reference_without_prefix(
    files: tuple[Path, Path], audit: Path
) -> None:
    """A reference read over the phone ('7kq2mx4pht') still finds the event."""
    result = from_event(files, "7kq2mx4pht")
    assert result.exit_code == 0, result.output
    assert "who: {user: m.patel}" in last_entry(files[0])


def test_from_event_for_a_named_device(files: tuple[Path, Path], audit: Path) -> None:
    """A block of a named device without sign-in grants that device."""
    result = from_event(files, "SG-DEV2222222")
    assert result.exit_code == 0, result.output
    assert "who: {device: reception-pc-1}\n    services: [linkedin]" in last_entry(files[0])


def test_from_event_searches_rotated_files(files: tuple[Path, Path], audit: Path) -> None:
    """An event already rotated out of the current log (even gzipped) is found."""
    import gzip  # noqa: PLC0415

    rotated = audit.parent / "audit.2026-11-20.jsonl.gz"  # as the writer names a rotated day
    with gzip.open(rotated, "wt") as out:
        out.write(json.dumps({**BLOCKED, "id": "SG-OLD6666666", "user": "k.jones"}) + "\n")
    result = from_event(files, "SG-OLD6666666")
    assert result.exit_code == 0, result.output
    assert "who: {user: k.jones}" in last_entry(files[0])


def test_from_event_says_when_a_rotated_file_cannot_be_read(
    files: tuple[Path, Path], audit: Path
) -> None:
    """A damaged rotated file is named, never read as "no such event"."""
    (audit.parent / "audit.2026-11-20.jsonl.gz").write_bytes(b"\x1f\x8b not gzip at all")
    result = from_event(files, "SG-OLD6666666")
    assert result.exit_code == 1
    assert "cannot search the audit log" in result.output
    assert "audit.2026-11-20.jsonl.gz" in result.output


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("SG-ANON333333", "neither a signed-in user nor a named device"),
        ("SG-MAL4444444", "not blocked for a catalogued service"),
        ("SG-OK55555555", "not a blocked access"),
        ("SG-AAAAAAAAAA", "not a blocked access"),
        ("SG-NOPE999999", "no event SG-NOPE999999"),
    ],
)
def test_from_event_refuses_what_it_cannot_grant(
    files: tuple[Path, Path], audit: Path, reference: str, message: str
) -> None:
    """An event that names no one, nothing, or no block is refused with the reason."""
    result = from_event(files, reference)
    assert result.exit_code == 1
    assert message in result.output
    assert files[0].read_text() == LIST


def test_from_event_with_another_audit_log(files: tuple[Path, Path], tmp_path: Path) -> None:
    """--audit-log overrides the path from policy.yaml."""
    other = tmp_path / "elsewhere.jsonl"
    write_audit(other, {**BLOCKED, "id": "SG-ELSE777777", "user": "j.smith"})
    assert from_event(files, "SG-ELSE777777").exit_code == 1
    result = from_event(files, "SG-ELSE777777", "--audit-log", str(other))
    assert result.exit_code == 0, result.output
    assert "who: {user: j.smith}" in last_entry(files[0])


# -- renew, revoke ----------------------------------------------------------------------------


def test_revoke_marks_the_entry_and_keeps_it(files: tuple[Path, Path]) -> None:
    """A revoked entry stays in the file with date, by whom and why."""
    listed, _ = files
    result = invoke(
        files, "revoke", "EX-2026-001", "--reason", "Page handed over", "--by", "deputy.manager"
    )
    assert result.exit_code == 0, result.output
    assert "expires: 2027-10-31   # end of October\n    revoked: {on: 2026-11-24, by: " in (
        listed.read_text()
    )
    assert "reason: Page handed over}" in listed.read_text()


def test_renew_sets_a_new_expiry_and_approval(files: tuple[Path, Path]) -> None:
    """Renewal moves the expiry, records the new approver and today's date."""
    listed, _ = files
    result = invoke(
        files, "renew", "EX-2026-002", "--until", "2027-06-30", "--approved-by", "deputy.manager"
    )
    assert result.exit_code == 0, result.output
    assert "renewed EX-2026-002 until 30 June 2027" in result.output
    entry = listed.read_text().split("  - id: ")[3]
    assert "approved_by: deputy.manager\n    approved_on: 2026-11-24\n" in entry
    assert "expires: 2027-06-30\n    renewed:\n      - {on: 2026-11-24" in entry


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["renew", "EX-2026-003", "--until", "2027-06-30", "--approved-by", "practice.manager"],
         "was revoked; grant a new exemption"),
        (["revoke", "EX-2026-003", "--reason", "again", "--by", "practice.manager"],
         "already revoked"),
        (["revoke", "EX-2099-001", "--reason", "typo", "--by", "practice.manager"],
         "no exemption with id 'EX-2099-001'"),
        (["renew", "EX-2026-001", "--until", "2028-06-30", "--approved-by", "practice.manager"],
         "more than 366 days after approval"),
        (["renew", "EX-2026-001", "--until", "2027-11-20", "--approved-by", "a.stranger"],
         "not on the approvers list"),
    ],
)  # fmt: skip
def test_renew_and_revoke_refusals(files: tuple[Path, Path], args: list[str], message: str) -> None:
    """What cannot be renewed or revoked is refused with the reason; the file is unchanged."""
    result = invoke(files, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "nothing was written" in result.output
    assert files[0].read_text() == LIST


def test_missing_list_is_a_clear_error(tmp_path: Path) -> None:
    """A wrong --authorisations path says so, exit 1."""
    for args in (
        ["revoke", "EX-1", "--reason", "r", "--by", "b"],
        ["list"],
        ["review"],
    ):
        result = CliRunner().invoke(
            main, ["exemptions", *args, "--authorisations", str(tmp_path / "nope.yaml")]
        )
        assert result.exit_code == 1, args
        assert "not found" in result.output


# -- list, review -----------------------------------------------------------------------------


def test_list_shows_what_is_in_force(files: tuple[Path, Path]) -> None:
    """The table has who, what, purpose, approver, expiry, days left and status."""
    result = invoke(files, "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "ID", "WHO", "WHAT", "PURPOSE", "APPROVED", "BY", "EXPIRES", "DAYS", "LEFT", "STATUS",
    ]  # fmt: skip
    assert "EX-2026-001  user j.smith" in lines[1]
    assert "Maintain the practice Facebook page" in lines[1]
    assert lines[1].split()[-2:] == ["341", "active"]
    assert [line.split()[0] for line in lines[1:]] == ["EX-2026-001", "EX-2026-002"]


def test_list_all_json(files: tuple[Path, Path]) -> None:
    """--all --json includes expired and revoked entries with their status."""
    result = invoke(files, "list", "--all", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["id"], r["status"], r["days_left"]) for r in rows] == [
        ("EX-2026-001", "active", 341),
        ("EX-2025-004", "expired", None),
        ("EX-2026-002", "active", 16),
        ("EX-2026-003", "revoked", None),
    ]
    assert rows[3]["revoked"] == {
        "on": "2026-10-01",
        "by": "practice.manager",
        "reason": "Vacancy filled",
    }
    assert rows[0]["who_kind"] == "user"
    assert rows[0]["what"] == ["facebook"]
    assert rows[0]["approved_by"] == "practice.manager"
    assert rows[0]["review_due"] == "2027-11-01"


def test_list_warns_about_two_active_entries_for_the_same_thing(files: tuple[Path, Path]) -> None:
    """Two active entries for the same who and what are a warning, not an error."""
    assert grant(files, "--user", "j.smith", "--service", "facebook", "--for", "2h").exit_code == 0
    result = invoke(files, "list")
    assert result.exit_code == 0
    assert "warning: EX-2026-004 and EX-2026-001 both cover facebook for user j.smith" in (
        result.output
    )


def test_review_lists_expiring_and_recently_expired(files: tuple[Path, Path]) -> None:
    """Nothing overdue: exit 0, with what expires soon and what expired lately."""
    result = invoke(files, "review", "--within", "60d")
    assert result.exit_code == 0, result.output
    assert "Expiring within 60d" in result.output
    assert "EX-2026-002  user a.nother: youtube — expires 10 December 2026 (in 16 days)" in (
        result.output
    )
    assert "Expired in the last 60d" in result.output
    assert "EX-2025-004" in result.output
    assert "EX-2026-003" not in result.output  # revoked: nothing to review


@pytest.mark.parametrize("within", ["2 months", "1y"])
def test_review_within_months_and_years(files: tuple[Path, Path], within: str) -> None:
    result = invoke(files, "review", "--within", within)
    assert result.exit_code == 0, result.output
    assert f"Expiring within {within}" in result.output
    assert "EX-2026-002  user a.nother: youtube" in result.output


def test_review_with_nothing_due(files: tuple[Path, Path]) -> None:
    """A short window with nothing in it says so and exits 0."""
    result = invoke(files, "review", "--within", "7")
    assert result.exit_code == 0, result.output
    assert "Nothing due" in result.output


def test_review_exits_1_when_overdue(files: tuple[Path, Path]) -> None:
    """An exemption past its annual review is overdue: exit 1, for cron and monitoring."""
    listed, config = files
    config.write_text(config.read_text() + "exemptions: {max_days: 730}\n")
    assert (
        grant(files, "--user", "m.patel", "--service", "linkedin", "--until", "2027-06-30")
    ).exit_code == 0
    text = listed.read_text().replace("approved_on: 2026-11-24", "approved_on: 2025-10-01")
    listed.write_text(text)
    result = invoke(files, "review")
    assert result.exit_code == 1, result.output
    assert "Overdue for the annual review" in result.output
    assert "EX-2026-004  user m.patel: linkedin — approved 1 October 2025" in result.output
    as_json = invoke(files, "review", "--json")
    assert as_json.exit_code == 1
    assert [r["id"] for r in json.loads(as_json.stdout)["overdue"]] == ["EX-2026-004"]


def test_list_of_an_invalid_file_names_the_problems(files: tuple[Path, Path]) -> None:
    """A hand-edited list that is invalid is reported with file and line, exit 1."""
    listed, _ = files
    listed.write_text(LIST.replace("services: [youtube]", "services: [youtub]"))
    result = invoke(files, "list")
    assert result.exit_code == 1
    assert f"{listed}:23: exemptions[2] (EX-2026-002).services: unknown service 'youtub'" in (
        result.output
    )


def test_list_does_not_warn_about_an_expired_or_revoked_duplicate(files: tuple[Path, Path]) -> None:
    """Expired (EX-2025-004) and revoked (EX-2026-003) entries are history, not duplicates."""
    assert grant(files, "--user", "k.jones", "--service", "facebook", "--for", "2h").exit_code == 0
    assert grant(files, "--user", "m.patel", "--service", "linkedin", "--for", "2h").exit_code == 0
    result = invoke(files, "list")
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


@pytest.mark.parametrize(
    "text",
    [
        LIST.replace("approvers: [practice.manager, deputy.manager]", "approvers: [practice"),
        LIST.replace("    who: {user: k.jones}\n", "   who: {user: k.jones}\n"),
    ],
)
@pytest.mark.parametrize(
    "args",
    [
        ["grant", "--user", "x.y", "--service", "linkedin", "--until", "2027-02-28",
         "--purpose", "Post vacancies on the practice LinkedIn page",
         "--approved-by", "practice.manager"],
        ["renew", "EX-2026-001", "--until", "2027-11-20", "--approved-by", "practice.manager"],
        ["revoke", "EX-2026-001", "--reason", "Task finished", "--by", "practice.manager"],
    ],
)  # fmt: skip
def test_an_edit_of_an_invalid_yaml_file_says_fix_it_first(
    files: tuple[Path, Path], text: str, args: list[str]
) -> None:
    """The file is broken before the change: say where, in the words `list` uses."""
    listed, _ = files
    listed.write_text(text)
    listing = invoke(files, "list")
    result = invoke(files, *args)
    assert result.exit_code == 1
    assert "fix the file first" in result.output
    assert "would not be valid after this change" not in result.output
    # The same problem line as `exemptions list` prints (file, the real line, yamlfile's words).
    [problem] = [line for line in listing.output.splitlines() if line.startswith("  ")]
    assert f"\n{problem}\n" in result.output
    assert not problem.startswith(f"  {listed}:1:")
    assert listed.read_text() == text


@pytest.mark.parametrize(
    "args",
    [
        ["grant", "--user", "m.patel", "--service", "linkedin", "--for", "99999999999w",
         "--purpose", "Post vacancies on the practice LinkedIn page",
         "--approved-by", "practice.manager"],
        ["grant", "--user", "m.patel", "--service", "linkedin", "--for", "9" * 5000 + "d",
         "--purpose", "Post vacancies on the practice LinkedIn page",
         "--approved-by", "practice.manager"],
        ["grant", "--user", "m.patel", "--service", "linkedin", "--until", "9999-12-31",
         "--purpose", "Post vacancies on the practice LinkedIn page",
         "--approved-by", "practice.manager"],
        ["renew", "EX-2026-001", "--until", "9999-12-31 23:59", "--approved-by", "deputy.manager"],
        ["renew", "EX-2026-001", "--for", "999999999d", "--approved-by", "deputy.manager"],
        ["review", "--within", "999999999999"],
        ["review", "--within", "99999999999w"],
    ],
)  # fmt: skip
def test_absurd_lengths_of_time_are_usage_errors(files: tuple[Path, Path], args: list[str]) -> None:
    """Too long to be a time is a clear message and exit 2, never an OverflowError."""
    listed, _ = files
    result = invoke(files, *args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "far" in result.output
    assert "Traceback" not in result.output
    assert listed.read_text() == LIST


def test_renew_to_an_earlier_date_is_refused(files: tuple[Path, Path]) -> None:
    """`renew` extends; it never prints "renewed" for what the proxy records as a change."""
    listed, _ = files
    result = invoke(
        files, "renew", "EX-2026-001", "--until", "2027-06-30", "--approved-by", "deputy.manager"
    )
    assert result.exit_code == 1
    assert "renewed" not in result.output
    assert "EX-2026-001 already runs until 31 October 2027" in result.output
    assert "socialguard exemptions revoke EX-2026-001" in result.output
    assert listed.read_text() == LIST


def test_revoke_by_someone_not_an_approver_is_refused(files: tuple[Path, Path]) -> None:
    """--by is checked against approvers:, as grant's --approved-by is."""
    listed, _ = files
    result = invoke(
        files, "revoke", "EX-2026-001", "--reason", "Left the practice", "--by", "a.stranger"
    )
    assert result.exit_code == 1
    assert (
        "--by 'a.stranger' is not on the approvers list (deputy.manager, practice.manager) — "
        "add them to approvers: or ask an approver to revoke it — nothing was written"
    ) in result.output
    assert listed.read_text() == LIST
    ok = invoke(
        files, "revoke", "EX-2026-001", "--reason", "Left the practice", "--by", "deputy.manager"
    )
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize("name", ["on", "yes", "off", "12:30", "null"])
def test_grant_to_a_user_named_like_a_yaml_11_value(files: tuple[Path, Path], name: str) -> None:
    """`--user on` is granted to the user "on", as the proxy and `list` read it back."""
    result = grant(files, "--user", name, "--service", "linkedin", "--until", "2027-02-28")
    assert result.exit_code == 0, result.output
    rows = json.loads(invoke(files, "list", "--json").stdout)
    assert (rows[-1]["who_kind"], rows[-1]["who"]) == ("user", name)


def test_names_are_read_as_people_type_them(files: tuple[Path, Path]) -> None:
    """--service by its name in any case, UK dates, months; an id in lower case; a near miss
    is named with "did you mean"."""
    listed, _ = files
    result = grant(files, "--user", "m.patel", "--service", "LinkedIn", "--until", "28/2/2027")
    assert result.exit_code == 0, result.output
    assert "services: [linkedin]" in last_entry(listed)
    assert "expires: 2027-02-28" in last_entry(listed)
    renewed = invoke(files, "renew", "ex-2026-004", "--for", "6 months",
                     "--approved-by", "practice.manager")  # fmt: skip
    assert renewed.exit_code == 0, renewed.output
    assert renewed.output.startswith("renewed EX-2026-004 until")
    missed = grant(files, "--user", "m.patel", "--service", "Linkedn", "--for", "1y")
    assert missed.exit_code == 1
    assert "--service: unknown service 'Linkedn' — did you mean 'LinkedIn'" in missed.output
