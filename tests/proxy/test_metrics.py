"""Metrics: counts by action and service, policy gauges read at scrape time, served over HTTP."""

from __future__ import annotations

import datetime as dt
import socket
import urllib.request

from prometheus_client import generate_latest

from socialguard.core.policy import attribute, decide
from socialguard.proxy.metrics import Metrics
from tests.conftest import NOW, make_policy


def scrape(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_decisions_and_exceptions_are_counted_by_label() -> None:
    policy = make_policy()
    metrics = Metrics(lambda: policy, clock=lambda: NOW)
    stranger = attribute("10.10.0.99", None, policy.settings)
    j_smith = attribute("10.10.0.99", "j.smith", policy.settings)
    for _ in range(3):
        metrics.decided(decide(stranger, "www.facebook.com", NOW, policy), 2e-6)
    metrics.decided(decide(j_smith, "www.facebook.com", NOW, policy), 2e-6)
    metrics.decided(decide(stranger, "example.org", NOW, policy), 1e-6)
    text = scrape(metrics)
    assert (
        'socialguard_decisions_total{action="block",category="social-networking",'
        'reason="not_authorised",service="facebook"} 3.0' in text
    )
    assert (
        'socialguard_decisions_total{action="allow",category="social-networking",'
        'reason="exemption",service="facebook"} 1.0' in text
    )
    assert (
        'socialguard_decisions_total{action="allow",category="",reason="not_social_media",'
        'service=""} 1.0' in text
    )
    # No one's use, minute by minute: no exemption id, so no person behind it.
    assert "exemption_id" not in text
    assert "EX-USER" not in text
    assert "socialguard_decision_seconds_count 5.0" in text


def test_policy_gauges_follow_the_clock() -> None:
    policy = make_policy()
    now = [NOW]
    metrics = Metrics(lambda: policy, clock=lambda: now[0])
    text = scrape(metrics)
    # EX-USER, EX-GROUP and EX-DEVICE are active on NOW; none ends within 30 days.
    assert "socialguard_exemptions_active 3.0" in text
    assert "socialguard_exemptions_expiring_soon 0.0" in text
    now[0] = dt.datetime(2027, 10, 15, tzinfo=dt.UTC)
    text = scrape(metrics)
    # ... and on 15 October 2027 EX-FUTURE has started too, and all four end on 31 October.
    assert "socialguard_exemptions_active 4.0" in text
    assert "socialguard_exemptions_expiring_soon 4.0" in text
    assert "socialguard_catalog_services 4.0" in text


def test_reloads_by_result() -> None:
    policy = make_policy()
    metrics = Metrics(lambda: policy, clock=lambda: NOW)
    metrics.reloaded(ok=True)
    metrics.reloaded(ok=False)
    metrics.reloaded(ok=False)
    text = scrape(metrics)
    assert 'socialguard_policy_reloads_total{result="loaded"} 1.0' in text
    assert 'socialguard_policy_reloads_total{result="rejected"} 2.0' in text


def test_served_on_loopback() -> None:
    policy = make_policy()
    metrics = Metrics(lambda: policy, clock=lambda: NOW)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics.serve(f"127.0.0.1:{port}")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert "socialguard_exemptions_active 3.0" in body


def test_known_label_values_start_at_zero() -> None:
    """Reload results are exported at 0 before anything happens, so an alert's increase()
    sees the first rejection."""
    policy = make_policy()
    metrics = Metrics(lambda: policy)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in metrics.registry.collect()
        for s in family.samples
    }
    assert samples[("socialguard_policy_reloads_total", (("result", "rejected"),))] == 0
    assert samples[("socialguard_policy_reloads_total", (("result", "loaded"),))] == 0
