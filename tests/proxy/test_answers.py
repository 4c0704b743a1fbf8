"""What is recorded and answered: repeated blocks become one counted event; the answers."""

from __future__ import annotations

import json
from pathlib import Path

from mitmproxy.test import tutils

from socialguard.audit.log import AuditLog
from socialguard.core.policy import Reason, attribute, decide, refusal
from socialguard.proxy.answers import REPEAT_WINDOW_SECONDS, Answers
from tests.conftest import NOW, make_policy


def test_repeated_blocks_are_one_counted_event_and_each_is_still_answered(
    tmp_path: Path,
) -> None:
    policy = make_policy()
    clock = [0.0]
    answers = Answers(AuditLog(tmp_path / "a.jsonl"), lambda: policy, monotonic=lambda: clock[0])
    who = attribute("10.10.0.5", None, policy.settings)
    decision = decide(who, "www.facebook.com", NOW, policy)
    references = [answers.record(who, decision, policy, via="http") for _ in range(5)]
    other = answers.record(who, decide(who, "www.youtube.com", NOW, policy), policy, via="http")
    assert len(set(references)) == 1
    assert other != references[0]
    clock[0] = REPEAT_WINDOW_SECONDS + 1
    answers.flush()
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert [e.get("count") for e in events] == [None, None, 4]
    assert events[2]["repeat_of"] == references[0]
    assert events[2]["window_seconds"] == REPEAT_WINDOW_SECONDS


def test_allowed_recorded_decisions_are_never_merged(tmp_path: Path) -> None:
    policy = make_policy()
    answers = Answers(AuditLog(tmp_path / "a.jsonl"), lambda: policy, monotonic=lambda: 0.0)
    who = attribute("10.10.0.5", "j.smith", policy.settings)
    decision = decide(who, "www.facebook.com", NOW, policy)
    assert not decision.blocked
    assert len({answers.record(who, decision, policy) for _ in range(3)}) == 3


def test_the_internal_error_answer_uses_the_block_page_words() -> None:
    response = Answers.internal_error(tutils.treq())
    assert response.status_code == 403
    assert "could not be checked just now" in response.text
    assert refusal(Reason.INTERNAL_ERROR, "x").blocked
