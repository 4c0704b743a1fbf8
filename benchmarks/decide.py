"""Section 1: decide() per call as the catalogue grows from a thousand to a million domains."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common import interleaved, median, percentile
from table import Row


# -- 1. decision cost ----------------------------------------------------------------------------
def synthetic_domains(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)  # noqa: S311 - test data
    words = ["media", "cdn", "api", "chat", "pix", "feed", "social", "video", "img", "app"]
    return [f"{rng.choice(words)}{i}.synth{i % 9973}-net.example" for i in range(count)]


def bench_decide(rounds: int, calls: int, sizes: Sequence[int]) -> list[Row]:
    from socialguard.core.catalog import Catalog, Service  # noqa: PLC0415
    from socialguard.core.policy import Policy, attribute, decide  # noqa: PLC0415
    from socialguard.files.policy_files import PolicyPaths, load_policy  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "policy.yaml"
        empty.write_text("# embedded defaults\n")
        base = load_policy(PolicyPaths(empty, None))
    real = base.catalog
    real_domains = [d for d, e in real.index.items() if not isinstance(e, str)]
    policies: dict[int, Policy] = {}
    for size in sizes:
        extra = max(0, size - len(real_domains))
        services = dict(real.services)
        services["synthetic"] = Service(
            id="synthetic",
            name="Synthetic",
            category="forums",
            domains=tuple(synthetic_domains(extra, size)),
        )
        catalog = Catalog(services=services, never_block=real.never_block)
        catalog.build_index()
        policies[size] = dataclasses.replace(base, catalog=catalog)
    rng = random.Random(7)  # noqa: S311
    hits = [f"{rng.choice(['www', 'm', 'cdn7', 'a.b'])}.{d}" for d in rng.sample(real_domains, 200)]
    misses = [f"host{i}.practice-site{i % 50}.nhs-example.org" for i in range(200)]
    long_hosts = [
        ".".join(f"label{j}x{i:04d}abcdefghij"[:20] for j in range(11)) + ".example.org"
        for i in range(200)
    ]
    kinds = {"hit": hits, "miss": misses, "long host (miss)": long_hosts}
    who = attribute("10.0.0.5", None, base.settings)
    when = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
    clock = time.perf_counter_ns
    overhead = median([-(clock() - clock()) for _ in range(10000)])
    times: dict[tuple[int, str], list[int]] = {(n, k): [] for n in sizes for k in kinds}
    gc.disable()
    try:
        for _r, size_text in interleaved([str(n) for n in sizes], rounds):
            size = int(size_text)
            policy = policies[size]
            for kind, hosts in kinds.items():
                out = times[(size, kind)]
                for i in range(calls):
                    host = hosts[i % len(hosts)]
                    t0 = clock()
                    decide(who, host, when, policy)
                    out.append(clock() - t0)
    finally:
        gc.enable()
    rows = []
    smallest = min(sizes)
    for kind in kinds:
        small = median(times[(smallest, kind)]) / 1000
        for size in sizes:
            values = times[(size, kind)]
            med = median(values) / 1000
            p99 = percentile(values, 99) / 1000
            growth = med / small if small else None
            rows.append(
                Row(
                    "1 decide()",
                    f"{kind}, {size:,} domains",
                    f"median {med:.2f} µs · p99 {p99:.2f} µs",
                    "",
                    f"x{growth:.2f} of {smallest:,}" if size != smallest and growth else "",
                    "≤ 2 µs median; ≤ x1.20 of 1k" if size != smallest else "≤ 2 µs median",
                )
            )
    rows.append(
        Row(
            "1 decide()",
            "how",
            f"{calls:,} calls x {rounds} rounds per cell, sizes interleaved; each call timed "
            f"alone (perf_counter_ns, {overhead:.0f} ns of it is the timer)",
        )
    )
    rows.append(decide_parts(policies[max(sizes)], hits, calls))
    return rows


def decide_parts(policy: Any, hosts: Sequence[str], calls: int) -> Row:
    """Where a decide() call goes, for hits on the largest catalogue: each step timed alone."""
    from socialguard.core.hosts import normalise_host, plain_name  # noqa: PLC0415
    from socialguard.core.policy import Action, Decision, Reason  # noqa: PLC0415

    names = [normalise_host(h).name for h in hosts]

    def per_call(step: Callable[[int], object]) -> float:
        started = time.perf_counter_ns()
        for i in range(calls):
            step(i)
        return (time.perf_counter_ns() - started) / calls / 1000

    n = len(hosts)
    parts = {
        # What decide() runs: plain_name (normalise_host only for unusual names) and entry.
        "plain_name": per_call(lambda i: plain_name(hosts[i % n])),
        "catalog.entry": per_call(lambda i: policy.catalog.entry(names[i % n])),
        "one Decision(...)": per_call(
            lambda i: Decision(action=Action.BLOCK, reason=Reason.NOT_AUTHORISED, host=names[i % n])
        ),
        "a dict probe (the proxy's remembered names)": per_call(
            lambda i: names[i % n] in policy.catalog.index
        ),
    }
    text = " · ".join(f"{k} {v:.2f} µs" for k, v in parts.items())
    return Row("1 decide()", "of which, per call (hits, largest catalogue)", text)
