"""A real proxy that has done everything its metrics count, and a real Prometheus scraping it.

Both live for the session: the Prometheus rules and the Grafana dashboard are checked against
the same /metrics. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import LOOPBACK, free_port, loopback_internet, wait_for_port
from tests.proxy.conftest import start, stop

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "socialguard-rules.yml"
EXEMPTION = "EX-2026-101"
TODAY = dt.datetime.now(zoneinfo.ZoneInfo("Europe/London")).date()
AUTHORISATIONS = f"""\
approvers: [practice.manager]
exemptions:
  - id: {EXEMPTION}
    who: {{device: lab-pc}}
    services: [facebook]
    purpose: Post the practice's opening hours
    approved_by: practice.manager
    approved_on: {TODAY - dt.timedelta(days=1)}
    expires: {TODAY + dt.timedelta(days=10)}
"""


def tool(name: str) -> str:
    """The path of a Debian tool these tests drive; skipped, with the fix, if it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed: run .ci/install-system-packages")
    return path


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def wait_for(port: int, line: str, seconds: float = 10.0) -> str:
    """/metrics once it holds `line`; fails with what it held otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        text = scrape(port)
        if line in text:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"/metrics never showed {line!r}:\n{text}")
        time.sleep(0.1)


@dataclass(frozen=True, slots=True)
class LiveProxy:
    """A running proxy's metrics address and its /metrics once everything has been counted."""

    metrics_port: int
    metrics: str


@pytest.fixture(scope="session")
def live_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveProxy]:
    """`socialguard run` after a block, an access under an exemption, a refused policy file
    and a taken one: every metric it exports then has a sample."""
    tmp = tmp_path_factory.mktemp("live")
    metrics_port = free_port()
    config = tmp / "policy.yaml"
    config.write_text(
        f'metrics: {{listen: "{LOOPBACK}:{metrics_port}"}}\ndevices:\n  lab-pc: {LOOPBACK}\n'
    )
    listed = tmp / "authorisations.yaml"
    listed.write_text(AUTHORISATIONS)
    with loopback_internet() as (internet_port, _seen):
        proxy = start(
            tmp,
            "--config", str(config),
            "--authorisations", str(listed),
            "--upstream", f"http://{LOOPBACK}:{internet_port}",
        )  # fmt: skip
        try:
            if not wait_for_port(metrics_port, 10):
                raise AssertionError(f"no /metrics: {proxy.log.read_text()[-2000:]}")
            codes = [
                proxy.curl("-o", "/dev/null", "-w", "%{http_code}", url).stdout
                for url in ("http://www.tiktok.com/", "http://www.facebook.com/")
            ]
            assert codes == ["403", "200"], proxy.log.read_text()[-2000:]
            listed.write_text("exemptions: [ {id: broken\n")
            wait_for(metrics_port, 'socialguard_policy_reloads_total{result="rejected"} 1.0')
            listed.write_text(AUTHORISATIONS + "# put right\n")
            text = wait_for(metrics_port, 'socialguard_policy_reloads_total{result="loaded"} 1.0')
            yield LiveProxy(metrics_port=metrics_port, metrics=text)
        finally:
            stop(proxy)


@dataclass(frozen=True, slots=True)
class Prometheus:
    """A Prometheus server scraping the live proxy every second, with deploy's rules loaded."""

    port: int

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        url = f"http://{LOOPBACK}:{self.port}{path}{query}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        return list(data["result"])


@pytest.fixture(scope="session")
def prometheus(
    live_proxy: LiveProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    binary = tool("prometheus")
    tmp = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "socialguard",
                        "static_configs": [{"targets": [f"{LOOPBACK}:{live_proxy.metrics_port}"]}],
                    }
                ],
            }
        )
    )
    log = tmp / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address={LOOPBACK}:{port}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        if not wait_for_port(port, 20):
            raise AssertionError(f"prometheus did not listen: {log.read_text()[-2000:]}")
        server = Prometheus(port=port)
        # rate() needs two samples in its window; wait for three scrapes of the proxy.
        deadline = time.monotonic() + 20
        while True:
            try:
                scrapes = server.query('count_over_time(up{job="socialguard"}[1m])')
            except OSError:  # not ready to answer yet
                scrapes = []
            if scrapes and float(scrapes[0]["value"][1]) >= 3:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus never scraped: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
