"""Tests for socialguard.files.authorisation_edit: edits keep every other byte, are validated whole
before writing, and replace the file atomically."""

from __future__ import annotations

import datetime as dt
import difflib
import os
import stat
import threading
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from socialguard.core.authorisations import EMPTY, Authorisations, parse_authorisations
from socialguard.core.catalog import parse_catalog
from socialguard.core.problems import ConfigError
from socialguard.core.settings import parse_settings
from socialguard.files import authorisation_edit
from socialguard.files.authorisation_edit import (
    AuthorisationDocument,
    EditError,
    InvalidFileError,
    NewExemption,
    edit_file,
    next_id,
    write_atomic,
)
from socialguard.files.yamlfile import parse_yaml

CATALOG = parse_catalog(
    parse_yaml(
        """\
services:
  facebook: {name: Facebook, category: social-networking, domains: [facebook.com]}
  linkedin: {name: LinkedIn, category: social-networking, domains: [linkedin.com]}
""",
        "catalog.yaml",
    ),
    "catalog.yaml",
)
LONDON = zoneinfo.ZoneInfo("Europe/London")
SETTINGS = parse_settings(
    parse_yaml("groups:\n  reception: [a.brown]\n", "policy.yaml"), "policy.yaml"
)

# A list as a practice manager might keep it: comments everywhere, blank lines, quotes.
COMMENTED = """\
# Authorisations for business use of social media.
# Kept by the Practice Manager; reviewed every year.
approvers: [practice.manager, deputy.manager]   # who may approve

exemptions:
  # The practice page
  - id: EX-2026-001
    who: {user: j.smith}          # or {group: reception}
    services: [facebook]
    purpose: "Maintain the practice Facebook page"
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31   # end of October

  # Flu clinic
  - id: EX-2026-002
    who: {user: k.jones}
    services: [facebook]
    purpose: 'Run the flu clinic campaign page'
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31
# Ask the Practice Manager before adding anything here.
"""

FOOTER = "# Ask the Practice Manager before adding anything here.\n"
NEW = NewExemption(
    who_kind="user",
    who="m.patel",
    services=("linkedin",),
    purpose="Post vacancies on the practice LinkedIn page",
    approved_by="practice.manager",
    approved_on=dt.date(2026, 11, 24),
    expires=dt.date(2027, 2, 28),
)
NEW_ENTRY = """\
  - id: EX-2026-003
    who: {user: m.patel}
    services: [linkedin]
    purpose: Post vacancies on the practice LinkedIn page
    approved_by: practice.manager
    approved_on: 2026-11-24
    expires: 2027-02-28
"""


def parse(data: Any, source: str) -> Authorisations:
    return parse_authorisations(data, source, CATALOG, SETTINGS)


def changed_lines(before: str, after: str) -> list[str]:
    """The lines an edit added or removed, each prefixed + or -."""
    diff = difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True))
    return [line for line in diff if line[:1] in "+-"]


def test_unchanged_document_renders_byte_for_byte() -> None:
    """Loading and rendering without an edit gives back exactly the file."""
    document = AuthorisationDocument(COMMENTED, "a.yaml")
    assert document.text() == COMMENTED
    assert document.warnings == []


@pytest.mark.parametrize(
    "text",
    [
        # Lists flush with their key, four-space indents, flow lists of entries left alone.
        "approvers: [a.b]\nexemptions:\n- id: EX-2026-001\n  who: {user: x}\n  services: [f]\n",
        "approvers: [a.b]\nexemptions:\n    - id: EX-2026-001\n      who: {user: x}\n",
        "approvers:\n  - a.b\n  - c.d  # deputy\nexemptions: []\n# Example:\n#  - id: EX\n",
    ],
)
def test_other_layouts_render_byte_for_byte(text: str) -> None:
    """The indentation of the file is detected, so untouched lines keep their bytes."""
    assert AuthorisationDocument(text, "a.yaml").text() == text


def test_grant_inserts_the_entry_and_changes_nothing_else() -> None:
    """A grant adds one entry after the last one; every comment and blank line stays put."""
    document = AuthorisationDocument(COMMENTED, "a.yaml")
    assert document.grant(NEW, 2026) == "EX-2026-003"
    assert document.text() == COMMENTED.removesuffix(FOOTER) + NEW_ENTRY + FOOTER


def test_grant_into_an_empty_flow_list() -> None:
    """`exemptions: []` becomes a block list; comments after it stay at the end of the file."""
    text = "# header\napprovers: [practice.manager]\nexemptions: []\n# Example:\n#  - id: X\n"
    document = AuthorisationDocument(text, "a.yaml")
    ident = document.grant(NEW, 2026)
    assert ident == "EX-2026-001"
    assert document.text() == (
        "# header\napprovers: [practice.manager]\nexemptions:\n"
        + NEW_ENTRY.replace("EX-2026-003", "EX-2026-001")
        + "# Example:\n#  - id: X\n"
    )


@pytest.mark.parametrize(
    "text", ["approvers: [practice.manager]\n", "approvers: [a]\nexemptions:\n"]
)
def test_grant_without_an_exemptions_list(text: str) -> None:
    """A file with no list (or an empty key) gets one."""
    document = AuthorisationDocument(text, "a.yaml")
    document.grant(NEW, 2026)
    assert parse_yaml(document.text(), "a.yaml")["exemptions"][0]["id"] == "EX-2026-001"


@pytest.mark.parametrize("text", ["", "# Nothing granted yet.\n", "# no newline"])
def test_grant_into_an_empty_or_comment_only_file(text: str) -> None:
    """A file with no data yet keeps its comments above the list the grant starts."""
    document = AuthorisationDocument(text, "a.yaml")
    assert document.text() == text
    assert document.warnings == []
    document.grant(NEW, 2026)
    after = document.text()
    assert after.startswith(text)
    assert parse_yaml(after, "a.yaml")["exemptions"][0]["id"] == "EX-2026-001"


def test_revoke_adds_one_line_to_that_entry() -> None:
    """Revoking marks the entry (date, by, reason) and leaves the rest of the file alone."""
    document = AuthorisationDocument(COMMENTED, "a.yaml")
    document.revoke("EX-2026-001", dt.date(2026, 11, 24), "practice.manager", "Left: the practice")
    after = document.text()
    revoked = "    revoked: {on: 2026-11-24, by: practice.manager, reason: 'Left: the practice'}\n"
    assert changed_lines(COMMENTED, after) == [f"+ {revoked}"]
    # Right under the entry's last line, above the blank line and the next entry's comment.
    assert "expires: 2027-10-31   # end of October\n" + revoked + "\n  # Flu clinic\n" in after
    entry = parse(parse_yaml(after, "a.yaml"), "a.yaml").exemptions[0]
    assert entry.revoked is not None
    assert entry.revoked.reason == "Left: the practice"


def test_renew_changes_only_that_entry_and_keeps_the_history() -> None:
    """A renewal updates expiry, approver and date, and records what they were."""
    document = AuthorisationDocument(COMMENTED, "a.yaml")
    document.renew(
        "EX-2026-002", dt.date(2027, 11, 30), "deputy.manager", dt.date(2026, 12, 1), LONDON
    )
    document.renew(
        "EX-2026-002", dt.date(2027, 12, 1), "practice.manager", dt.date(2026, 12, 2), LONDON
    )
    after = document.text()
    old_tail = """\
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31
# Ask"""
    new_tail = """\
    approved_by: practice.manager
    approved_on: 2026-12-02
    expires: 2027-12-01
    renewed:
      - {on: 2026-12-01, by: deputy.manager, previous_approved_by: practice.manager, \
previous_approved_on: 2026-11-01, previous_expires: 2027-10-31}
      - {on: 2026-12-02, by: practice.manager, previous_approved_by: deputy.manager, \
previous_approved_on: 2026-12-01, previous_expires: 2027-11-30}
# Ask"""
    assert COMMENTED.endswith(old_tail + " the Practice Manager before adding anything here.\n")
    assert after == COMMENTED.replace(old_tail, new_tail)
    assert after.endswith("# Ask the Practice Manager before adding anything here.\n")
    assert "&" not in after  # a date used twice is written twice, never as an alias


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda d: d.revoke("EX-2099-001", dt.date(2026, 1, 1), "a", "b"), "no exemption"),
        (
            lambda d: d.renew("EX-2099-001", dt.date(2027, 1, 1), "a", dt.date(2026, 1, 1), LONDON),
            "no ex",
        ),
    ],
)
def test_unknown_id_is_refused_with_the_ids_there_are(action: Any, message: str) -> None:
    """An id that is not in the file is an error that lists the ids that are."""
    document = AuthorisationDocument(COMMENTED, "a.yaml")
    with pytest.raises(EditError, match=message) as raised:
        action(document)
    assert "EX-2026-001, EX-2026-002" in str(raised.value)


def test_revoked_entry_cannot_be_revoked_again_or_renewed() -> None:
    """A revoked entry is history: renewing it means granting a new one."""
    document = AuthorisationDocument(COMMENTED, "a.yaml")
    document.revoke("EX-2026-001", dt.date(2026, 11, 24), "practice.manager", "Task finished")
    with pytest.raises(EditError, match="already revoked"):
        document.revoke("EX-2026-001", dt.date(2026, 11, 24), "practice.manager", "again")
    with pytest.raises(EditError, match="grant a new exemption"):
        document.renew(
            "EX-2026-001", dt.date(2027, 1, 1), "practice.manager", dt.date(2026, 12, 1), LONDON
        )


@pytest.mark.parametrize(
    ("ids", "year", "expected"),
    [
        ([], 2026, "EX-2026-001"),
        (["EX-2026-001", "EX-2026-007", "EX-2025-020"], 2026, "EX-2026-008"),
        (["EX-2025-020", "custom-id"], 2026, "EX-2026-001"),
        (["EX-2026-999"], 2026, "EX-2026-1000"),
    ],
)
def test_next_id(ids: list[str], year: int, expected: str) -> None:
    """Fresh ids count up within the year and never reuse a number."""
    assert next_id(ids, year) == expected


def test_invalid_yaml_is_refused() -> None:
    """A file that is not YAML is reported with its name, not a traceback."""
    with pytest.raises(ConfigError, match=r"a\.yaml"):
        AuthorisationDocument("exemptions: [ {id: broken\n", "a.yaml")


# -- edit_file: validate, then write atomically -------------------------------------------


def grant(document: AuthorisationDocument) -> str:
    return document.grant(NEW, 2026)


@pytest.fixture
def listed(tmp_path: Path) -> Path:
    path = tmp_path / "authorisations.yaml"
    path.write_text(COMMENTED)
    return path


def test_edit_file_writes_a_valid_change(listed: Path) -> None:
    """A valid grant is written and the returned list holds it."""
    result = edit_file(listed, grant, parse)
    assert result.result == "EX-2026-003"
    assert [e.id for e in result.authorisations.exemptions][-1] == "EX-2026-003"
    assert listed.read_text().endswith(NEW_ENTRY + FOOTER)
    assert not list(listed.parent.glob(".authorisations.yaml.*.tmp"))


def test_invalid_edit_is_refused_and_the_file_is_untouched(listed: Path) -> None:
    """An edit the proxy would reject is never written: same bytes, same inode."""
    before = listed.stat()

    def bad(document: AuthorisationDocument) -> str:
        return document.grant(
            NewExemption(
                who_kind="group",
                who="nobody",
                services=("myspace",),
                purpose="n/a",
                approved_by="someone.else",
                approved_on=dt.date(2026, 11, 24),
                expires=dt.date(2028, 1, 1),
            ),
            2026,
        )

    with pytest.raises(ConfigError) as raised:
        edit_file(listed, bad, parse)
    messages = "\n".join(str(p) for p in raised.value.problems)
    assert "group 'nobody' is not defined" in messages
    assert "unknown service 'myspace'" in messages
    assert "'n/a' does not say what the business purpose is" in messages
    assert "'someone.else' is not on the approvers list" in messages
    assert "more than 366 days after approval" in messages
    assert all(str(listed) in str(p) for p in raised.value.problems)
    assert listed.read_text() == COMMENTED
    assert listed.stat().st_ino == before.st_ino
    assert listed.stat().st_mtime_ns == before.st_mtime_ns


def test_a_failure_before_the_rename_leaves_the_old_file(
    listed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between writing the temporary file and the rename never leaves half a file."""

    def crash(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space"):
        edit_file(listed, grant, parse)
    assert listed.read_text() == COMMENTED
    assert [p.name for p in listed.parent.iterdir() if p.name != ".authorisations.yaml.lock"] == [
        "authorisations.yaml"
    ]


def test_the_new_bytes_are_on_disk_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync of the temporary file comes before os.replace, and the directory after it."""
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        calls.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = tmp_path / "a.yaml"
    path.write_text("old\n")
    write_atomic(path, "new\n")
    assert calls == ["fsync-file", "replace", "fsync-dir"]
    assert path.read_text() == "new\n"


def test_mode_is_kept(listed: Path) -> None:
    """The practice's permissions on the file survive an edit (the temp file starts at 0600)."""
    listed.chmod(0o640)
    edit_file(listed, grant, parse)
    assert stat.S_IMODE(listed.stat().st_mode) == 0o640


def test_a_symlinked_list_keeps_its_link(listed: Path, tmp_path: Path) -> None:
    """Editing through a symlink replaces the file behind it, not the link."""
    link = tmp_path / "link.yaml"
    link.symlink_to(listed)
    edit_file(link, grant, parse)
    assert link.is_symlink()
    assert "EX-2026-003" in listed.read_text()


def test_missing_file_is_an_edit_error(tmp_path: Path) -> None:
    """Editing a list that is not there says so (and creates nothing)."""
    with pytest.raises(EditError, match="not found"):
        edit_file(tmp_path / "nope.yaml", grant, parse)
    assert not (tmp_path / "nope.yaml").exists()


def test_concurrent_grants_each_get_their_own_id(listed: Path) -> None:
    """Grants at the same moment never overwrite each other: the edit lock serialises them."""
    results: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(edit_file(listed, grant, parse).result)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(results) == [f"EX-2026-{n:03d}" for n in range(3, 11)]
    final = parse(parse_yaml(listed.read_text(), "a.yaml"), "a.yaml")
    assert [e.id for e in final.exemptions] == [f"EX-2026-{n:03d}" for n in range(1, 11)]
    assert listed.read_text().startswith(COMMENTED.split("# Ask the", maxsplit=1)[0])


# -- names YAML 1.1 would misread ----------------------------------------------------------

# The proxy reads with pyyaml (YAML 1.1); ruamel writes YAML 1.2, where these are plain strings.
YAML11_TRAPS = ["yes", "no", "on", "off", "y", "N", "true", "null", "~", "12:30", "0o17", "017",
                "1_000", "1e3", ".inf", "2026-01-01", "<<", "="]  # fmt: skip


@pytest.mark.parametrize("name", YAML11_TRAPS)
def test_granted_names_read_back_as_the_same_strings(listed: Path, name: str) -> None:
    """`--user on` must not come back as True, nor `--user 12:30` as 750: it is quoted."""
    listed.write_text(listed.read_text().replace("deputy.manager]", f"deputy.manager, '{name}']"))
    new = NewExemption(
        who_kind="user",
        who=name,
        domains=(f"{name}.example" if name.isalnum() else "example.org",),
        purpose="Post vacancies on the practice LinkedIn page",
        approved_by=name,
        approved_on=dt.date(2026, 11, 24),
        expires=dt.date(2027, 2, 28),
    )
    edit_file(listed, lambda d: d.grant(new, 2026), parse)
    entry = parse_yaml(listed.read_text(), "a.yaml")["exemptions"][-1]
    assert entry["who"] == {"user": name}
    assert type(entry["who"]["user"]) is str
    assert type(entry["approved_by"]) is str
    assert entry["approved_by"] == name
    parsed = parse(parse_yaml(listed.read_text(), "a.yaml"), "a.yaml").exemptions[-1]
    assert (parsed.who, parsed.approved_by) == (name, name)


def test_revocation_by_and_reason_read_back_as_written(listed: Path) -> None:
    """A revocation's approver and reason are strings too, whatever they look like."""
    listed.write_text(listed.read_text().replace("deputy.manager]", "deputy.manager, 'no']"))
    edit_file(
        listed, lambda d: d.revoke("EX-2026-001", dt.date(2026, 11, 24), "no", "12:30") or "", parse
    )
    revoked = parse_yaml(listed.read_text(), "a.yaml")["exemptions"][0]["revoked"]
    assert revoked == {"on": dt.date(2026, 11, 24), "by": "no", "reason": "12:30"}


def test_an_entry_that_would_read_back_differently_is_refused(
    listed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check after rendering is the last line of defence: nothing misread is written."""
    monkeypatch.setattr(authorisation_edit, "_scalar", lambda value: value)  # no quoting
    before = listed.read_bytes()
    new = NewExemption(
        who_kind="user",
        who="on",
        services=("linkedin",),
        purpose="Post vacancies on the practice LinkedIn page",
        approved_by="practice.manager",
        approved_on=dt.date(2026, 11, 24),
        expires=dt.date(2027, 2, 28),
    )
    with pytest.raises(EditError, match=r"who would be read back as \{'user': True\}"):
        edit_file(listed, lambda d: d.grant(new, 2026), parse)
    assert listed.read_bytes() == before


# -- line endings --------------------------------------------------------------------------


def test_a_crlf_file_keeps_its_layout_and_line_endings(listed: Path) -> None:
    """A list saved on Windows (CRLF) is edited in place; the new lines are CRLF too."""
    original = COMMENTED.replace("\n", "\r\n")
    listed.write_bytes(original.encode())
    result = edit_file(listed, lambda d: d.grant(NEW, 2026), parse)
    assert result.warnings == ()
    after = listed.read_bytes().decode()
    assert after == original.replace(
        FOOTER.replace("\n", "\r\n"), (NEW_ENTRY + FOOTER).replace("\n", "\r\n")
    )
    assert "\n" not in after.replace("\r\n", "")


def test_a_file_without_a_final_newline_keeps_its_layout(listed: Path) -> None:
    """No newline at the end before the edit: none after it, and no other byte moves."""
    original = COMMENTED.removesuffix("\n")
    listed.write_text(original)
    result = edit_file(listed, lambda d: d.grant(NEW, 2026), parse)
    assert result.warnings == ()
    assert listed.read_text() == COMMENTED.replace(FOOTER, NEW_ENTRY + FOOTER).removesuffix("\n")


def test_a_crlf_file_without_a_final_newline_and_a_revocation(listed: Path) -> None:
    """Both at once, on an entry in the middle of the file."""
    original = COMMENTED.replace("\n", "\r\n").removesuffix("\r\n")
    listed.write_bytes(original.encode())
    document = AuthorisationDocument(original, "a.yaml")
    assert document.text() == original
    document.revoke("EX-2026-001", dt.date(2026, 11, 24), "practice.manager", "Task finished")
    after = document.text()
    assert document.warnings == []
    added = "    revoked: {on: 2026-11-24, by: practice.manager, reason: Task finished}\r\n"
    assert after == original.replace("end of October\r\n", "end of October\r\n" + added)


# -- a file that was invalid before the edit ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("approvers: [practice.manager\nexemptions: []\n", 2),
        ("approvers: [a]\nexemptions:\n  - id: x\n   who: y\n", 4),
        ("approvers: [a]\n\n\nexemptions: [ {id: broken\n", 5),
    ],
)
def test_a_file_already_invalid_yaml_names_its_line_and_says_fix_it_first(
    listed: Path, text: str, line: int
) -> None:
    """The problem is the file as it is, at the line the reader stops, in yamlfile's words."""
    listed.write_text(text)
    with pytest.raises(InvalidFileError) as raised:
        edit_file(listed, lambda d: d.grant(NEW, 2026), parse)
    [problem] = raised.value.problems
    assert problem.line == line
    assert problem.message.startswith("not valid YAML: ")
    assert problem.message.endswith("— check indentation and quoting")
    assert listed.read_text() == text


def test_a_file_already_failing_validation_is_reported_as_it_is(listed: Path) -> None:
    """Problems that were there before the edit are the file's, not the edit's."""
    text = COMMENTED.replace("approved_by: practice.manager\n    approved_on: 2026-11-01\n    "
                             "expires: 2027-10-31   #", "approved_by: a.stranger\n    approved_on: "
                             "2026-11-01\n    expires: 2027-10-31   #")  # fmt: skip
    assert text != COMMENTED
    listed.write_text(text)
    with pytest.raises(InvalidFileError) as raised:
        edit_file(listed, lambda d: d.grant(NEW, 2026), parse)
    assert [p.line for p in raised.value.problems] == [11]
    assert "a.stranger" in raised.value.problems[0].message


# -- renew only extends; revoke only by an approver -----------------------------------------


@pytest.mark.parametrize(
    ("until", "on"),
    [
        (dt.date(2027, 6, 30), dt.date(2026, 12, 1)),  # earlier
        (dt.date(2027, 10, 31), dt.date(2026, 11, 1)),  # the same, approved the same day
        (dt.datetime(2027, 10, 31, 17, 0, tzinfo=LONDON), dt.date(2026, 12, 1)),  # same day, 17:00
    ],
)
def test_renew_refuses_to_shorten(until: dt.date, on: dt.date) -> None:
    """Ending an exemption sooner is a revocation, not a renewal: say so."""
    document = AuthorisationDocument(COMMENTED, "a.yaml")
    with pytest.raises(EditError, match=r"already runs until 31 October 2027.*revoke EX-2026-001"):
        document.renew("EX-2026-001", until, "practice.manager", on, LONDON)
    assert document.text() == COMMENTED


def test_renew_to_the_same_end_with_a_fresh_approval_is_allowed() -> None:
    """The annual re-approval of an exemption that keeps its end date."""
    document = AuthorisationDocument(COMMENTED, "a.yaml")
    document.renew(
        "EX-2026-001", dt.date(2027, 10, 31), "deputy.manager", dt.date(2026, 12, 1), LONDON
    )
    assert "approved_on: 2026-12-01" in document.text()


def test_revoke_by_someone_not_on_the_approvers_list_is_refused() -> None:
    """As for approved_by: only an approver may withdraw an exemption."""
    document = AuthorisationDocument(COMMENTED, "a.yaml")
    with pytest.raises(EditError) as raised:
        document.revoke("EX-2026-001", dt.date(2026, 11, 24), "a.stranger", "Left the practice")
    assert str(raised.value) == (
        "a.yaml: --by 'a.stranger' is not on the approvers list (deputy.manager, "
        "practice.manager) — add them to approvers: or ask an approver to revoke it"
    )
    assert document.text() == COMMENTED


def test_an_alias_in_the_list_is_refused_before_ruamel_reads_it(tmp_path: Path) -> None:
    """The round-trip reader never sees an anchor: the file is refused as the proxy refuses it."""
    path = tmp_path / "authorisations.yaml"
    path.write_text("approvers: &who [practice.manager]\nexemptions: *who\n")
    with pytest.raises(InvalidFileError) as caught:
        edit_file(path, lambda document: "", lambda data, source: EMPTY)
    assert "anchors and aliases" in str(caught.value.problems[0])
    assert path.read_text().startswith("approvers: &who")


def test_an_oversized_list_is_refused_before_it_is_edited(tmp_path: Path) -> None:
    path = tmp_path / "authorisations.yaml"
    path.write_text("approvers: [practice.manager]\n" + "# padding\n" * 110_000)
    with pytest.raises(InvalidFileError) as caught:
        edit_file(path, lambda document: "", lambda data, source: EMPTY)
    assert "larger than 1 MiB" in str(caught.value.problems[0])
