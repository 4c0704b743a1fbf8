"""Tests for socialguard.core.authorisations: the exemptions list, validated whole, and expiry."""

from __future__ import annotations

import datetime as dt
import textwrap
import zoneinfo
from pathlib import Path

import pytest

from socialguard.core.authorisations import (
    EMPTY,
    Authorisations,
    Exemption,
    end_of,
    label_of,
    parse_authorisations,
)
from socialguard.core.catalog import Catalog, parse_catalog
from socialguard.core.problems import ConfigError
from socialguard.core.settings import Settings, parse_settings
from socialguard.files.policy_files import load_authorisations
from socialguard.files.yamlfile import parse_yaml

LONDON = zoneinfo.ZoneInfo("Europe/London")
UTC = dt.UTC

CATALOG_TEXT = """\
services:
  facebook:
    name: Facebook
    category: social-networking
    domains: [facebook.com]
  youtube:
    name: YouTube
    category: multimedia-sharing
    domains: [youtube.com]
never_block: [nhs.uk]
"""
SETTINGS_TEXT = """\
devices:
  reception-pc-1: 10.10.0.21
groups:
  reception: [a.brown, c.davis]
"""


def make_catalog() -> Catalog:
    return parse_catalog(parse_yaml(CATALOG_TEXT, "catalog.yaml"), "catalog.yaml")


CATALOG = make_catalog()
SETTINGS = parse_settings(parse_yaml(SETTINGS_TEXT, "policy.yaml"), "policy.yaml")

# `on` is quoted: unquoted, YAML 1.1 reads it as `true` (see test_revoked_with_unquoted_on).
REVOKED = "{on: 2026-11-24, by: practice.manager, reason: left the practice}"

# One valid entry; tests vary one field of it at a time.
ENTRY = """\
  - id: EX-2026-001
    who: {user: j.smith}
    services: [facebook]
    purpose: Maintain the practice's Facebook page
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31
"""


def parse(text: str, settings: Settings = SETTINGS) -> Authorisations:
    data = parse_yaml(textwrap.dedent(text), "authorisations.yaml")
    return parse_authorisations(data, "authorisations.yaml", CATALOG, settings)


def document(*entries: str, approvers: str = "[practice.manager, dr.jones]") -> str:
    return f"approvers: {approvers}\nexemptions:\n" + "".join(entries)


def entry(**changes: str | None) -> str:
    """ENTRY with some fields replaced (value text) or removed (None)."""
    lines = ENTRY.splitlines()
    out = []
    for line in lines:
        key = line.strip().removeprefix("- ").split(":", 1)[0]
        if key in changes:
            value = changes.pop(key)
            if value is None:
                if line.lstrip().startswith("- "):
                    out.append("  - notes: placeholder for the removed first key")
                continue
            prefix = "  - " if line.lstrip().startswith("- ") else "    "
            out.append(f"{prefix}{key}: {value}")
        else:
            out.append(line)
    out.extend(f"    {key}: {value}" for key, value in changes.items() if value is not None)
    return "\n".join(out) + "\n"


def problems_of(text: str, settings: Settings = SETTINGS) -> list[tuple[int, str]]:
    with pytest.raises(ConfigError) as caught:
        parse(text, settings)
    assert all(p.source == "authorisations.yaml" for p in caught.value.problems)
    return [(p.line, p.message) for p in caught.value.problems]


def only(text: str) -> Exemption:
    [exemption] = parse(text).exemptions
    return exemption


def test_valid_entry_is_parsed() -> None:
    """A complete entry becomes an Exemption with every field."""
    authorisations = parse(document(ENTRY))
    assert authorisations.approvers == frozenset({"practice.manager", "dr.jones"})
    assert authorisations.warnings == ()
    [e] = authorisations.exemptions
    assert e.id == "EX-2026-001"
    assert (e.who_kind, e.who) == ("user", "j.smith")
    assert e.services == frozenset({"facebook"})
    assert e.categories == frozenset()
    assert e.purpose == "Maintain the practice's Facebook page"
    assert e.approved_by == "practice.manager"
    assert e.approved_on == dt.date(2026, 11, 1)
    assert e.starts == dt.datetime(2026, 11, 1, tzinfo=LONDON)
    assert e.expires == dt.datetime(2027, 11, 1, tzinfo=LONDON)
    assert e.expires_label == "31 October 2027"
    assert e.revoked is None
    assert e.line == 3
    assert e.what == "facebook"
    assert authorisations.for_who("user", "j.smith") == [e]
    assert authorisations.for_who("user", "someone.else") == []
    assert authorisations.for_who("group", "j.smith") == []


@pytest.mark.parametrize("text", ["", "# nothing yet\n"])
def test_empty_file_is_empty(text: str) -> None:
    """An empty file has no approvers and no exemptions."""
    assert parse(text) is EMPTY


def test_empty_exemptions_list() -> None:
    """The shipped empty list parses."""
    authorisations = parse("approvers: [practice.manager]\nexemptions: []\n")
    assert authorisations.exemptions == ()


@pytest.mark.parametrize(
    ("changes", "key_line", "message"),
    [
        (
            {"services": "[myspace]"},
            5,
            "exemptions[0] (EX-2026-001).services: unknown service 'myspace' — see "
            "'socialguard catalog list'",
        ),
        (
            {"services": None, "categories": "[gaming]"},
            9,
            "exemptions[0] (EX-2026-001).categories: unknown category 'gaming'",
        ),
        (
            {"approved_by": "office.cat"},
            7,
            "exemptions[0] (EX-2026-001).approved_by: 'office.cat' is not on the approvers list",
        ),
        (
            {"approved_on": "2026-11-01", "expires": "2026-10-31"},
            9,
            "exemptions[0] (EX-2026-001).expires: 31 October 2026 is before it was approved",
        ),
        (
            {"purpose": "n/a"},
            6,
            "exemptions[0] (EX-2026-001).purpose: 'n/a' does not say what the business purpose is",
        ),
        (
            {"purpose": "Test"},
            6,
            "exemptions[0] (EX-2026-001).purpose: 'Test' does not say what the business purpose",
        ),
        (
            {"purpose": "'  business purpose '"},
            6,
            "exemptions[0] (EX-2026-001).purpose: 'business purpose' does not say",
        ),
        (
            {"purpose": "Marketing"},
            6,
            "exemptions[0] (EX-2026-001).purpose: 'Marketing' does not say",
        ),
        (
            {"expires": "2027-11-03"},
            9,
            "exemptions[0] (EX-2026-001).expires: more than 366 days after approval",
        ),
        (
            {"colour": "blue"},
            10,
            "exemptions[0] (EX-2026-001): unknown key 'colour'",
        ),
        (
            {"who": "{user: j.smith, group: reception}"},
            4,
            "exemptions[0] (EX-2026-001).who: write exactly one of {user: NAME}",
        ),
        (
            {"who": "j.smith"},
            4,
            "exemptions[0] (EX-2026-001).who: write exactly one of",
        ),
        (
            {"who": "{person: j.smith}"},
            4,
            "exemptions[0] (EX-2026-001).who: write exactly one of",
        ),
        (
            {"who": "{group: doctors}"},
            4,
            "exemptions[0] (EX-2026-001).who: group 'doctors' is not defined under groups:",
        ),
        (
            {"who": "{device: kitchen-pc}"},
            4,
            "exemptions[0] (EX-2026-001).who: device 'kitchen-pc' is not defined under devices:",
        ),
        (
            {"approved_on": "soon"},
            8,
            "exemptions[0] (EX-2026-001).approved_on: needs a date like 2026-11-01",
        ),
        (
            {"expires": "never"},
            9,
            "exemptions[0] (EX-2026-001).expires: needs a date like 2027-10-31",
        ),
        (
            {"starts": "tomorrow"},
            10,
            "exemptions[0] (EX-2026-001).starts: needs a date or a date and time",
        ),
        (
            {"revoked": "yes"},
            10,
            "exemptions[0] (EX-2026-001).revoked: write {on: 2026-11-24, by: NAME, reason: TEXT}",
        ),
        (
            {"revoked": "{on: 2026-11-24, by: practice.manager}"},
            10,
            "exemptions[0] (EX-2026-001).revoked: write {on:",
        ),
        (
            {"domains": "['https://facebook.com/']"},
            10,
            "exemptions[0] (EX-2026-001).domains: 'https://facebook.com/' — ",
        ),
    ],
)
def test_each_rule_has_message_and_line(
    changes: dict[str, str | None], key_line: int, message: str
) -> None:
    """Each broken rule is one problem at the offending key's line, naming the entry."""
    text = document(entry(**changes))
    found = problems_of(text)
    assert len(found) == 1, found
    line, got = found[0]
    assert got.startswith(message), got
    assert line == key_line, (line, text)


@pytest.mark.parametrize(
    ("removed", "message"),
    [
        ("purpose", "needs a purpose: the business reason for the exemption"),
        ("approved_by", "needs approved_by: (one of the approvers)"),
        ("services", "name what is allowed with services:, categories: or domains:"),
    ],
)
def test_missing_fields_are_reported_at_the_entry(removed: str, message: str) -> None:
    """A missing required field is a problem at the entry's first line."""
    found = problems_of(document(entry(**{removed: None})))
    assert found == [(3, f"exemptions[0] (EX-2026-001): {message}")]


def test_missing_id() -> None:
    """An entry without an id is a problem that shows an example id."""
    text = document(entry(id=None))
    found = problems_of(text)
    assert found == [(3, "exemptions[0]: needs an id, e.g. id: EX-2026-001")]


def test_duplicate_ids() -> None:
    """Two entries with the same id: the second is reported, naming the line of the first."""
    second = ENTRY.replace("j.smith", "a.brown")
    found = problems_of(document(ENTRY, second))
    assert found == [
        (
            10,
            "exemptions[1]: id 'EX-2026-001' is already used on line 3 — give each exemption "
            "its own id",
        )
    ]


def test_all_problems_are_reported_at_once() -> None:
    """Problems in several entries and at the top level come out together, in file order."""
    bad_one = entry(purpose="tbc", approved_by="nobody")
    bad_two = entry(id="EX-2", services="[myspace]", who="{group: nobody}")
    found = problems_of("colour: red\n" + document(bad_one, bad_two))
    lines = [line for line, _ in found]
    assert len(found) == 5
    assert lines[0] == 1
    assert "unknown key 'colour'" in found[0][1]
    assert any("'tbc'" in m for _, m in found)
    assert any("'nobody' is not on the approvers" in m for _, m in found)
    assert any("(EX-2).who: group 'nobody'" in m for _, m in found)
    assert any("(EX-2).services: unknown service 'myspace'" in m for _, m in found)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("- a\n- b\n", 1, "the file must be a mapping"),
        ("approvers: practice.manager\nexemptions: []\n", 1, "approvers: must be a list"),
        ("approvers: [a]\nexemptions: {x: 1}\n", 2, "exemptions: must be a list"),
        ("approvers: [a]\nexemptions:\n  - just a string\n", 3, "exemptions[0]: each exemption"),
    ],
)
def test_file_shape_problems(text: str, line: int, message: str) -> None:
    """A file of the wrong shape is a problem naming what shape it should be."""
    found = problems_of(text)
    assert found[0][0] == line
    assert found[0][1].startswith(message)


def test_group_and_device_exemptions_parse() -> None:
    """Groups and devices named in settings can hold exemptions; categories and domains too."""
    group = entry(id="EX-G", who="{group: reception}", services=None, categories="[forums]")
    device = entry(
        id="EX-D", who="{device: reception-pc-1}", services=None, domains="[YouTube.COM.]"
    )
    authorisations = parse(document(group, device))
    g, d = authorisations.exemptions
    assert (g.who_kind, g.who, g.categories) == ("group", "reception", frozenset({"forums"}))
    assert (d.who_kind, d.who, d.domains) == (
        "device",
        "reception-pc-1",
        frozenset({"youtube.com"}),
    )
    assert d.covers("other", "other", ["www.youtube.com", "youtube.com", "com"])
    assert not d.covers("other", "other", ["notyoutube.com", "com"])
    assert g.covers("x", "forums", [])
    assert not g.covers("facebook", "social-networking", ["facebook.com"])


def test_groups_and_devices_come_from_settings() -> None:
    """Without the group in settings, the same file is rejected."""
    text = document(entry(who="{group: reception}"))
    assert parse(text).exemptions[0].who == "reception"
    bare = parse_settings(None, "<defaults>")
    [(line, message)] = problems_of(text, bare)
    assert line == 4
    assert "group 'reception' is not defined" in message


def test_revoked_entry_is_kept_with_its_revocation() -> None:
    """A revoked entry stays in the list, marked revoked, whatever the date."""
    e = only(document(entry(revoked=REVOKED)))
    assert e.revoked is not None
    assert e.revoked.on == dt.date(2026, 11, 24)
    assert e.revoked.by == "practice.manager"
    assert e.revoked.reason == "left the practice"
    assert e.status(dt.datetime(2027, 1, 1, tzinfo=UTC)) == "revoked"
    assert e.status(dt.datetime(2020, 1, 1, tzinfo=UTC)) == "revoked"


def test_revoked_with_unquoted_on() -> None:
    """The documented revocation form {on: DATE, by: NAME, reason: TEXT} is accepted."""
    text = document(entry(revoked="{on: 2026-11-24, by: practice.manager, reason: left}"))
    e = only(text)
    assert e.revoked is not None
    assert e.revoked.on == dt.date(2026, 11, 24)


def test_overlapping_entries_warn() -> None:
    """Two unrevoked entries for the same who and what are allowed, with a warning."""
    second = entry(id="EX-2026-002", services="[facebook, youtube]")
    authorisations = parse(document(ENTRY, second))
    assert len(authorisations.exemptions) == 2
    assert authorisations.warnings == (
        "EX-2026-002 and EX-2026-001 both cover facebook for user j.smith",
    )


@pytest.mark.parametrize(
    "second",
    [
        entry(id="EX-2026-002", revoked=REVOKED),
        entry(id="EX-2026-002", who="{user: a.brown}"),
        entry(id="EX-2026-002", services="[youtube]"),
    ],
)
def test_no_warning_without_overlap(second: str) -> None:
    """No warning when one entry is revoked, or the who or the what differ."""
    assert parse(document(ENTRY, second)).warnings == ()


@pytest.mark.parametrize(
    ("expires", "instant", "status"),
    [
        # Winter: the day ends at midnight GMT.
        ("2026-12-15", dt.datetime(2026, 12, 15, 23, 59, 59, tzinfo=UTC), "active"),
        ("2026-12-15", dt.datetime(2026, 12, 16, 0, 0, tzinfo=UTC), "expired"),
        # Summer: the day ends at midnight BST, 23:00 UTC.
        ("2027-06-30", dt.datetime(2027, 6, 30, 22, 59, 59, tzinfo=UTC), "active"),
        ("2027-06-30", dt.datetime(2027, 6, 30, 23, 0, tzinfo=UTC), "expired"),
        ("2027-06-30", dt.datetime(2027, 6, 30, 23, 59, 59, tzinfo=LONDON), "active"),
        ("2027-06-30", dt.datetime(2027, 7, 1, 0, 0, tzinfo=LONDON), "expired"),
        # The day before the clocks go forward ends at 00:00 GMT on 29 March.
        ("2027-03-27", dt.datetime(2027, 3, 27, 23, 59, 59, tzinfo=UTC), "active"),
        ("2027-03-27", dt.datetime(2027, 3, 28, 0, 0, tzinfo=UTC), "expired"),
        # The day the clocks go back (25 October 2026) ends at 00:00 GMT = 00:00 UTC.
        ("2026-10-25", dt.datetime(2026, 10, 25, 23, 59, 59, tzinfo=UTC), "active"),
        ("2026-10-25", dt.datetime(2026, 10, 26, 0, 0, tzinfo=UTC), "expired"),
        ("2026-10-25", dt.datetime(2026, 10, 26, 0, 0, tzinfo=LONDON), "expired"),
        # A date and time ends at that local instant.
        ("2027-06-30 15:00:00", dt.datetime(2027, 6, 30, 13, 59, 59, tzinfo=UTC), "active"),
        ("2027-06-30 15:00:00", dt.datetime(2027, 6, 30, 14, 0, tzinfo=UTC), "expired"),
        ("2026-12-01T15:00:00Z", dt.datetime(2026, 12, 1, 14, 59, 59, tzinfo=UTC), "active"),
        ("2026-12-01T15:00:00Z", dt.datetime(2026, 12, 1, 15, 0, tzinfo=UTC), "expired"),
    ],
)
def test_expiry_is_the_end_of_the_local_day(
    expires: str, instant: dt.datetime, status: str
) -> None:
    """A date expiry is valid through that whole Europe/London day, across clock changes."""
    approved = "2026-10-01" if expires < "2027-03" else "2026-11-01"
    e = only(document(entry(approved_on=approved, expires=expires)))
    assert e.status(instant) == status


def test_expiry_before_bst_starts_2026() -> None:
    """Expiry 2026-03-28 ends at 2026-03-29T00:00 GMT, the night before the clocks go forward."""
    e = only(document(entry(approved_on="2026-01-10", expires="2026-03-28")))
    assert e.expires == dt.datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    assert e.status(dt.datetime(2026, 3, 28, 23, 59, 59, tzinfo=UTC)) == "active"
    assert e.status(dt.datetime(2026, 3, 29, 0, 0, tzinfo=UTC)) == "expired"


def test_expiry_on_day_clocks_go_back_2026() -> None:
    """Expiry 2026-10-25 ends at 2026-10-26T00:00 GMT, which is 00:00 UTC."""
    e = only(document(entry(approved_on="2026-10-01", expires="2026-10-25")))
    assert e.expires == dt.datetime(2026, 10, 26, 0, 0, tzinfo=UTC)
    assert e.expires.utcoffset() == dt.timedelta(0)


def test_datetime_expiry_label_and_instant() -> None:
    """A date-and-time expiry ends at that local instant and reads with its time."""
    e = only(document(entry(expires="2027-06-30 15:00:00")))
    assert e.expires == dt.datetime(2027, 6, 30, 14, 0, tzinfo=UTC)
    assert e.expires_label == "30 June 2027 15:00"


@pytest.mark.parametrize(
    ("starts", "instant", "status"),
    [
        (None, dt.datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), "not-yet-valid"),
        (None, dt.datetime(2026, 11, 1, 0, 0, tzinfo=UTC), "active"),
        ("2026-12-01", dt.datetime(2026, 11, 30, 12, 0, tzinfo=UTC), "not-yet-valid"),
        ("2026-12-01", dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC), "active"),
        ("2026-12-01 09:00:00", dt.datetime(2026, 12, 1, 8, 59, tzinfo=UTC), "not-yet-valid"),
        ("2026-12-01 09:00:00", dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "active"),
    ],
)
def test_start(starts: str | None, instant: dt.datetime, status: str) -> None:
    """An exemption starts on its approval day unless it names a later start."""
    changes = {} if starts is None else {"starts": starts}
    assert only(document(entry(**changes))).status(instant) == status


@pytest.mark.parametrize(
    ("expires", "ok"),
    [
        ("2027-11-01", True),  # 365 days after approval
        ("2027-11-02", True),  # 366 days: the limit
        ("2027-11-03", False),  # 367 days
    ],
)
def test_max_days_boundary(expires: str, ok: bool) -> None:
    """An expiry date may be at most max_days after the approval date."""
    text = document(entry(expires=expires))
    if ok:
        assert only(text).expires_label
    else:
        assert "more than 366 days" in problems_of(text)[0][1]


def test_max_days_comes_from_settings() -> None:
    """exemptions.max_days in settings changes the limit."""
    strict = parse_settings(parse_yaml("exemptions: {max_days: 30}\n", "p"), "p")
    text = document(entry(expires="2026-12-15"))
    assert only(text).id == "EX-2026-001"
    assert "more than 30 days" in problems_of(text, strict)[0][1]


def test_expiry_same_day_as_approval_is_valid() -> None:
    """An exemption may expire on the day it was approved (valid for that one day)."""
    e = only(document(entry(expires="2026-11-01")))
    assert e.status(dt.datetime(2026, 11, 1, 12, tzinfo=UTC)) == "active"
    assert e.status(dt.datetime(2026, 11, 2, 0, tzinfo=UTC)) == "expired"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.date(2027, 10, 31), "31 October 2027"),
        (dt.date(2027, 1, 5), "5 January 2027"),
        (dt.datetime(2027, 1, 5, 9, 30), "5 January 2027 09:30"),  # noqa: DTZ001 - as YAML gives
        ("whenever", "whenever"),
    ],
)
def test_label_of(value: object, expected: str) -> None:
    """Expiry labels read naturally: day without a leading zero, month in words."""
    assert label_of(value) == expected


def test_end_of_in_another_zone() -> None:
    """end_of uses the zone it is given."""
    tz = zoneinfo.ZoneInfo("America/New_York")
    assert end_of(dt.date(2026, 7, 1), tz) == dt.datetime(2026, 7, 2, 4, 0, tzinfo=UTC)
    assert end_of("x", tz) is None


def test_load_authorisations(tmp_path: Path) -> None:
    """load_authorisations reads a file and returns its bytes; problems name the path."""
    path = tmp_path / "authorisations.yaml"
    path.write_text(document(ENTRY), encoding="utf-8")
    authorisations, raw = load_authorisations(path, CATALOG, SETTINGS)
    assert authorisations.exemptions[0].id == "EX-2026-001"
    assert raw == path.read_bytes()
    path.write_text(document(entry(purpose="todo")), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_authorisations(path, CATALOG, SETTINGS)
    assert str(caught.value).startswith(f"{path}:6: ")


def test_an_expiry_at_the_end_of_the_calendar_is_a_message_not_a_crash() -> None:
    problems = problems_of(document(entry(expires="9999-12-31")))
    assert len(problems) == 1
    assert "more than" in problems[0][1]
    assert "renew it instead" in problems[0][1]


@pytest.mark.parametrize(
    ("value", "recorded"),
    [
        ("{system_user: pm}", "pm"),
        ("{system_user: root, sudo_user: j.admin}", "root (sudo from j.admin)"),
        ("j.admin", "j.admin"),
    ],
)
def test_recorded_by_names_who_ran_the_grant(value: str, recorded: str) -> None:
    """`exemptions grant` writes who ran it beside the approver; the list accepts the key."""
    assert only(document(entry(recorded_by=value))).recorded_by == recorded
    assert only(document(ENTRY)).recorded_by == ""


@pytest.mark.parametrize("value", ["{sudo_user: j.admin}", "{system_user: pm, host: x}", "[pm]"])
def test_a_bad_recorded_by_is_a_problem_at_its_line(value: str) -> None:
    [(line, message)] = problems_of(document(entry(recorded_by=value)))
    assert line == 10
    assert message.startswith("exemptions[0] (EX-2026-001).recorded_by: write {system_user: NAME}")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"purpose": None, "purpsoe": "Run the practice page"},
            "unknown key 'purpsoe' — did you mean 'purpose'?",
        ),
        (
            {"revoked": "{on: 2026-11-24, by: practice.manager, reason: left, whn: x}"},
            ".revoked: unknown key 'whn'",
        ),
        ({"who": "{usr: j.smith}"}, ".who: write exactly one of"),
    ],
)
def test_unknown_keys_in_an_entry_name_the_nearest(
    changes: dict[str, str | None], message: str
) -> None:
    found = problems_of(document(entry(**changes)))
    assert any(message in m for _, m in found), found


def test_a_misspelt_who_key_suggests_the_right_one() -> None:
    found = problems_of(document(entry(who="{usr: j.smith}")))
    assert any("did you mean 'user'?" in m for _, m in found), found


def test_an_unknown_top_key_names_the_nearest() -> None:
    found = problems_of("approvers: [practice.manager]\nexemption: []\n")
    assert found == [
        (2, "unknown key 'exemption' — did you mean 'exemptions'? (known: approvers, exemptions)")
    ]
