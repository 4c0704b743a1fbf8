"""The staff notice and the record of processing follow the settings in force."""

from __future__ import annotations

import pytest

from socialguard.core.privacy import notice, record_of_processing, render_text
from socialguard.core.settings import Settings, parse_settings
from socialguard.files.yamlfile import parse_yaml


def settings(text: str = "") -> Settings:
    return parse_settings(parse_yaml(text, "policy.yaml") if text else None, "policy.yaml")


def notice_text(text: str = "") -> str:
    """The notice as text, its line wrapping undone so phrases can be looked for."""
    return " ".join(render_text(notice(settings(text))).split())


def test_retention_is_the_setting_in_force() -> None:
    """The notice states audit.retention_days, and changes when it changes."""
    assert "396 days" in notice_text()
    changed = notice_text("audit: {retention_days: 120}\n")
    assert "120 days" in changed
    assert "396 days" not in changed


def test_paths_are_said_to_be_kept_only_when_record_paths_is_on() -> None:
    """With record_paths off the notice says paths are never kept; on, it says they are."""
    off = notice_text()
    assert "only the host name is kept" in off
    assert "record_paths is on" not in off
    on = notice_text("audit: {record_paths: true}\n")
    assert "record_paths is on" in on
    assert "only the host name is kept" not in on


def test_page_mode_and_signup_guard_name_what_is_opened() -> None:
    """Only where https_block: page or the signup guard opens a connection does it say so."""
    plain = notice_text()
    assert "No connection is opened" in plain
    assert "block page instead of a browser error" not in plain
    page = notice_text("https_block: page\n")
    assert "block page instead of a browser error" in page
    assert "No connection is opened" not in page
    guard = notice_text("email_domains: [nhs.net]\nsignup_guard: {hosts: [amazon.co.uk]}\n")
    assert "amazon.co.uk" in guard
    assert "registration with a work e-mail address" in guard


def test_rest_breaks_are_mentioned_only_where_a_zone_has_them() -> None:
    """A notice for a practice with no break windows does not describe rest-break use."""
    assert "rest break" not in notice_text().split("What is recorded")[1].split("What each")[0]
    zoned = notice_text(
        "zones:\n  - name: byod\n    subnets: [10.20.0.0/24]\n    break_windows:\n"
        '      - {days: mon-fri, from: "12:30", to: "13:30"}\n'
    )
    assert "during a rest break" in zoned


def test_central_copies_follow_copies_to() -> None:
    """Where copies go is said as configured, and 'no copies' when none is."""
    assert "No copies are sent elsewhere" in notice_text()
    sent = notice_text("audit: {copies_to: [the PCN's central log store]}\n")
    assert "the PCN's central log store" in sent
    assert "No copies are sent elsewhere" not in sent


@pytest.mark.parametrize("key", ["data_protection_officer", "lawful_basis"])
def test_what_only_the_practice_knows_is_not_set_until_filled(key: str) -> None:
    """Placeholders say 'not set' and name the key; filled in, the practice's words show."""
    assert f"not set — fill in practice.{key}" in notice_text()
    filled = notice_text(f"practice: {{{key}: Dr A. Example}}\n")
    assert "Dr A. Example" in filled
    assert f"practice.{key}" not in filled


def test_record_of_processing_names_the_security_measures_in_force() -> None:
    """The record says whether lines are signed, from audit.hmac_key_file."""
    unsigned = " ".join(render_text(record_of_processing(settings())).split())
    assert "not signed with a key" in unsigned
    signed = " ".join(
        render_text(
            record_of_processing(settings("audit: {hmac_key_file: /etc/socialguard/audit.key}\n"))
        ).split()
    )
    assert "HMAC-SHA256" in signed
    assert "/etc/socialguard/audit.key" in signed
    assert "Retention" in signed
