"""deploy/grafana: the dashboard queries only what socialguard exports, shows all of it, and
every one of its queries returns data in a real Prometheus scraping a real proxy.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.deploy.conftest import DEPLOY, LiveProxy, Prometheus

DASHBOARD = DEPLOY / "grafana" / "socialguard.json"
# Grafana fills these in; a query run directly gets values that suit a minutes-old proxy.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "5m",
    "$instance": ".*",
}


def queries() -> list[str]:
    """Every `expr` in the dashboard, wherever it sits."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "expr" and isinstance(item, str):
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(DASHBOARD.read_text()))
    return found


def family(name: str) -> str:
    """The metric a sample name belongs to: socialguard_decisions_total → socialguard_decisions."""
    return re.sub(r"_(bucket|count|sum|total|created)$", "", name)


def test_the_dashboard_queries_only_exported_metrics(live_proxy: LiveProxy) -> None:
    """Every socialguard_* name in the dashboard (queries and variables) is in a real /metrics."""
    named = set(re.findall(r"\b(socialguard_[a-z0-9_]+)", DASHBOARD.read_text()))
    exported = set(re.findall(r"^(socialguard_[a-z0-9_]+)", live_proxy.metrics, re.M))
    assert named, "the dashboard uses no socialguard metric"
    assert named <= exported, sorted(named - exported)


def test_the_dashboard_shows_every_metric_socialguard_exports(live_proxy: LiveProxy) -> None:
    """No exported metric is left off: each family in /metrics is queried by some panel."""
    exported = {
        family(name)
        for name in re.findall(r"^(socialguard_[a-z0-9_]+)", live_proxy.metrics, re.M)
        if not name.endswith("_created")
    }
    shown = {family(n) for e in queries() for n in re.findall(r"\b(socialguard_[a-z0-9_]+)", e)}
    assert exported <= shown, sorted(exported - shown)


def test_every_dashboard_query_returns_data_from_a_real_proxy(prometheus: Prometheus) -> None:
    """Run as Grafana would (variables filled in), each query is valid and finds series."""
    exprs = queries()
    assert len(exprs) >= 10
    for expr in exprs:
        query = expr
        for variable, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
            query = query.replace(variable, value)
        assert "$" not in query, expr
        assert prometheus.query(query), f"no data for {query}"
