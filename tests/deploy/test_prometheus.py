"""deploy/prometheus: the alert rules pass promtool, every alert has unit tests that show it
firing and staying quiet, and the rules work on what a real proxy exports, in a real Prometheus.
"""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

import yaml

from tests.deploy.conftest import RULES, LiveProxy, Prometheus, tool

UNIT_TESTS = RULES.with_name("socialguard-rules.test.yml")
ALERTS = {
    "SocialguardProxyDown",
    "SocialguardPolicyRejected",
    "SocialguardAuditWriteFailing",
    "SocialguardExemptionsEnding",
    "SocialguardBlockSurge",
    "SocialguardHealthzFailing",
}


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_promtool_checks_the_rules() -> None:
    """`promtool check rules` accepts the file and finds every alert."""
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout


def test_the_rules_are_the_alerts_of_the_issue_each_explained_for_it() -> None:
    """One alert for each condition the issue names, each with a summary and a description."""
    assert {rule["alert"] for rule in rules()} == ALERTS
    for rule in rules():
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), rule["alert"]
        assert len(annotations["description"].split()) >= 20, rule["alert"]


def test_promtool_unit_tests_pass() -> None:
    """`promtool test rules` runs the unit tests and every one holds."""
    tested = promtool("test", "rules", UNIT_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    """Each alert has a unit test where it fires and one where it must not."""
    cases = [
        case
        for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    fires = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert fires == ALERTS
    assert quiet == ALERTS


def test_every_socialguard_metric_in_the_rules_is_exported(live_proxy: LiveProxy) -> None:
    """The rules name only metrics that a real proxy's /metrics shows."""
    named = set(re.findall(r"\b(socialguard_[a-z0-9_]+)", RULES.read_text()))
    exported = set(re.findall(r"^(socialguard_[a-z0-9_]+)", live_proxy.metrics, re.M))
    assert named, "the rules use no socialguard metric"
    assert named <= exported, sorted(named - exported)


def test_the_rules_evaluate_on_a_real_proxy(prometheus: Prometheus) -> None:
    """In a real Prometheus scraping the proxy, every rule evaluates without error, the
    refused policy file raises SocialguardPolicyRejected, and the exemption ending in 10 days
    makes SocialguardExemptionsEnding pending (it waits an hour before firing)."""
    deadline = time.monotonic() + 15
    while True:
        groups = prometheus.get("/api/v1/rules")["groups"]
        evaluated = [rule for group in groups for rule in group["rules"]]
        states = {alert["labels"]["alertname"]: alert["state"]
                  for rule in evaluated for alert in rule.get("alerts", [])}  # fmt: skip
        wanted = {
            "SocialguardPolicyRejected": "firing",
            "SocialguardExemptionsEnding": "pending",
        }
        if states == wanted or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {rule["name"] for rule in evaluated} == ALERTS
    assert all(rule["health"] == "ok" for rule in evaluated), evaluated
    assert states == wanted
