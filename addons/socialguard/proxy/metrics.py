"""Prometheus metrics for IT: what is being decided, how fast, and whether the policy is healthy.

Counts only, never who: user names, hosts and exemption ids stay in the audit log, where access
to them is controlled. (An exemption id stands for one person's authorisation; a counter by id
would put that person's use of social media, minute by minute, in every Prometheus that
scrapes the gateway, such as an IT contractor's central one. Use under exemptions is counted
by service instead: `reason="exemption"`.) Gauges about the policy (active exemptions, those
expiring soon, its age) are computed when scraped, from the policy in force, so never stale.
"""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import MetricsHandler
from prometheus_client.registry import Collector

from socialguard.core.settings import parse_listen

if TYPE_CHECKING:
    from socialguard.core.policy import Decision, Policy

EXPIRING_WITHIN = dt.timedelta(days=30)
# Deciding is microseconds; the audit fsync that follows a block is milliseconds.
_LATENCY_BUCKETS = (1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 1e-3, 1e-2, 0.1)


class _PolicyCollector(Collector):
    """Gauges read from the policy in force at scrape time."""

    def __init__(
        self, policy: Callable[[], Policy], clock: Callable[[], dt.datetime], loaded_at: list[float]
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._loaded_at = loaded_at

    def collect(self) -> Iterator[Metric]:
        policy = self._policy()
        now = self._clock()
        active = [e for e in policy.authorisations.exemptions if e.status(now) == "active"]
        expiring = [e for e in active if e.expires - now <= EXPIRING_WITHIN]
        yield GaugeMetricFamily(
            "socialguard_exemptions_active", "Exemptions in force now.", value=len(active)
        )
        yield GaugeMetricFamily(
            "socialguard_exemptions_expiring_soon",
            "Active exemptions that expire within 30 days.",
            value=len(expiring),
        )
        yield GaugeMetricFamily(
            "socialguard_policy_age_seconds",
            "Seconds since the policy in force was loaded.",
            value=time.time() - self._loaded_at[0],
        )
        yield GaugeMetricFamily(
            "socialguard_catalog_services",
            "Services in the catalogue.",
            value=len(policy.catalog.services),
        )


Health = Callable[[], str | None]


def _handler(
    registry: CollectorRegistry, health: Health
) -> type[http.server.BaseHTTPRequestHandler]:
    """prometheus_client's own /metrics handler, with /healthz answered before it."""
    metrics = MetricsHandler.factory(registry)

    class Handler(metrics):  # type: ignore[valid-type, misc]
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.split("?", 1)[0] != "/healthz":
                super().do_GET()
                return
            try:
                problem = health()
            except Exception as error:  # noqa: BLE001 - a broken check is a failed check, never a 200
                problem = f"the health check failed: {error!r}"
            body = (f"unhealthy: {problem}\n" if problem else "ok\n").encode()
            self.send_response(503 if problem else 200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a scrape every 15 s is not news

    return Handler


class _Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


class Metrics:
    """One registry per proxy, so tests and benchmarks never share counters."""

    def __init__(
        self,
        policy: Callable[[], Policy],
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.registry = CollectorRegistry()
        self._loaded_at = [time.time()]
        self.decisions = Counter(
            "socialguard_decisions",
            "Decisions (one per CONNECT, TLS server name and request) by action, reason, "
            "category and service (empty for sites that are not catalogued).",
            ["action", "reason", "category", "service"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "socialguard_policy_reloads",
            "Policy files taken (loaded) or refused (rejected) by the running proxy.",
            ["result"],
            registry=self.registry,
        )
        self.audit_failures = Counter(
            "socialguard_audit_write_failures",
            "Audit events that could not be written (the access was refused).",
            registry=self.registry,
        )
        self.decision_seconds = Histogram(
            "socialguard_decision_seconds",
            "Time to name, attribute and decide one connection or request.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_PolicyCollector(policy, clock, self._loaded_at))
        self._decision_counters: dict[tuple[str, str, str, str], Any] = {}
        # Every known label value starts at 0, so a first rejection is an increase a rule can
        # see (a series that appears at 1 has no increase()).
        for result in ("loaded", "rejected"):
            self.reloads.labels(result)

    def decided(self, decision: Decision, seconds: float | None) -> None:
        """Count one decision; `seconds` is None when it was remembered, not worked out."""
        key = (
            str(decision.action),
            str(decision.reason),
            decision.category or "",
            decision.service or "",
        )
        counter = self._decision_counters.get(key)
        if counter is None:  # labels() takes a lock and builds a key: once per label set
            counter = self._decision_counters[key] = self.decisions.labels(*key)
        counter.inc()
        if seconds is not None:
            self.decision_seconds.observe(seconds)

    def reloaded(self, *, ok: bool) -> None:
        self.reloads.labels("loaded" if ok else "rejected").inc()
        if ok:
            self._loaded_at[0] = time.time()

    def serve(self, listen: str, health: Health = lambda: None) -> None:
        """Expose /metrics and /healthz on HOST:PORT (IT's choice; loopback unless a scraper
        needs more). /healthz answers 200 "ok", or 503 with `health()`'s reason."""
        host, port = parse_listen(listen)
        server_class = _Server6 if ":" in host else http.server.ThreadingHTTPServer
        server = server_class((host, port), _handler(self.registry, health))
        server.daemon_threads = True
        threading.Thread(
            target=server.serve_forever, name="socialguard-metrics", daemon=True
        ).start()
        self.server = server
