"""/metrics of a running `socialguard run`: what IT's monitoring reads, scraped over loopback."""

from __future__ import annotations

import datetime as dt
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.loopback import LOOPBACK, free_port
from tests.proxy.conftest import RunningProxy
from tests.proxy.test_reload import GOOD, TODAY, WITHIN, exemption


def scrape(port: int) -> str:
    url = f"http://{LOOPBACK}:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        return str(response.read().decode())


def wait_for_line(port: int, line: str) -> str:
    deadline = time.monotonic() + WITHIN + 2
    while True:
        text = scrape(port)
        if line in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def test_metrics_count_decisions_exceptions_and_reloads(
    run_proxy: Any, tmp_path: Path, htpasswd: Path, internet: Any
) -> None:
    metrics_port = free_port()
    config = tmp_path / "policy.yaml"
    config.write_text(f'metrics:\n  listen: "{LOOPBACK}:{metrics_port}"\n')
    listed = tmp_path / "authorisations.yaml"
    listed.write_text(GOOD)
    proxy: RunningProxy = run_proxy(
        "--config", str(config),
        "--authorisations", str(listed),
        "--proxyauth", f"@{htpasswd}",
        "--upstream", f"http://{LOOPBACK}:{internet[0]}",
    )  # fmt: skip
    for _ in range(2):
        blocked = proxy.curl(
            "-o", "/dev/null", "-w", "%{http_code}", "http://www.tiktok.com/", user="a.nother"
        )  # fmt: skip
        assert blocked.stdout == "403"
    exempt = proxy.curl(
        "-o", "/dev/null", "-w", "%{http_code}", "http://www.facebook.com/", user="j.smith"
    )  # fmt: skip
    assert exempt.stdout == "200"
    text = scrape(metrics_port)
    assert (
        'socialguard_decisions_total{action="block",category="social-networking",'
        'reason="not_authorised",service="tiktok"} 2.0' in text
    )
    assert (
        'socialguard_decisions_total{action="allow",category="social-networking",'
        'reason="exemption",service="facebook"} 1.0' in text
    )
    assert "EX-2026-001" not in text
    assert "socialguard_exemptions_active 1.0" in text
    assert "socialguard_decision_seconds_count" in text

    listed.write_text(
        GOOD + exemption("EX-2026-002", "k.jones", "tiktok", TODAY + dt.timedelta(days=20))
    )
    text = wait_for_line(metrics_port, 'socialguard_policy_reloads_total{result="loaded"} 1.0')
    assert 'socialguard_policy_reloads_total{result="loaded"} 1.0' in text
    assert "socialguard_exemptions_active 2.0" in text
    assert "socialguard_exemptions_expiring_soon 1.0" in text

    listed.write_text("exemptions: [ {id: broken\n")
    text = wait_for_line(metrics_port, 'socialguard_policy_reloads_total{result="rejected"} 1.0')
    assert 'socialguard_policy_reloads_total{result="rejected"} 1.0' in text
    assert "socialguard_exemptions_active 2.0" in text  # the last good policy is still in force
