"""check's sentences: every reason is said in words, and never as its code."""

from __future__ import annotations

import pytest

from socialguard.core.explain import sentence
from socialguard.core.policy import Action, Decision, Reason

BLOCKING = {
    Reason.NOT_AUTHORISED,
    Reason.EXEMPTION_EXPIRED,
    Reason.EXEMPTION_NOT_YET_VALID,
    Reason.EXEMPTION_REVOKED,
    Reason.MALFORMED_HOST,
    Reason.WORK_EMAIL_SIGNUP,
    Reason.INTERNAL_ERROR,
}


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_is_a_sentence_without_its_code(reason: Reason) -> None:
    action = Action.BLOCK if reason in BLOCKING else Action.ALLOW
    decision = Decision(
        action=action,
        reason=reason,
        host="www.facebook.com",
        service="facebook",
        service_name="Facebook",
        category="social-networking",
        exemption_id="EX-2026-001",
        purpose="Post the flu clinic dates",
        exemption_ends="31 October 2027",
        detail="an address at nhs.net",
    )
    said = sentence(decision)
    assert said.startswith("Blocked: " if decision.blocked else "Allowed: ")
    assert said.endswith(".")
    if "_" in str(reason):  # "exemption" is a word as well as a code
        assert str(reason) not in said
    assert "social-networking" not in said


def test_an_expired_exemption_names_its_last_day() -> None:
    decision = Decision(
        action=Action.BLOCK,
        reason=Reason.EXEMPTION_EXPIRED,
        host="www.facebook.com",
        service_name="Facebook",
        category="social-networking",
        exemption_id="EX-OLD",
        exemption_ends="31 October 2026",
    )
    assert sentence(decision) == (
        "Blocked: Facebook (social networking); exemption EX-OLD expired on 31 October 2026."
    )
