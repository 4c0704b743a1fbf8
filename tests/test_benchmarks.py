"""The benchmark's own arithmetic and parsing: percentiles, interleaving, responses, summaries."""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load() -> SimpleNamespace:
    """The benchmark's sections, imported as `make bench` runs them (its folder on the path)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        names: dict[str, object] = {}
        for section in ("common", "load", "table", "proxy"):
            names.update(vars(importlib.import_module(section)))
        return SimpleNamespace(**names)
    finally:
        sys.path.remove(str(BENCHMARKS))


bench = _load()


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([4.0, 3.0, 2.0, 1.0], 100, 4.0),
        (list(map(float, range(1, 101))), 99, 99.0),
        (list(map(float, range(1, 101))), 0, 1.0),
        (list(map(float, range(1, 1001))), 99, 990.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    """Nearest-rank percentile: the smallest value with at least q% of values at or below it."""
    assert bench.percentile(values, q) == expected


def test_percentile_of_nothing_is_an_error() -> None:
    """No values, no percentile: never a made-up zero."""
    with pytest.raises(ValueError, match="no values"):
        bench.percentile([], 50)


def test_rounds_alternate_their_order() -> None:
    """A B C, then C B A: a drift in the machine falls on every configuration alike."""
    assert list(bench.interleaved(["a", "b", "c"], 3)) == [
        (0, "a"), (0, "b"), (0, "c"),
        (1, "c"), (1, "b"), (1, "a"),
        (2, "a"), (2, "b"), (2, "c"),
    ]  # fmt: skip


def test_ratio_of_missing_figures_is_none() -> None:
    """A ratio is only printed when both sides were measured."""
    assert bench.ratio(1.0, 2.0) == 0.5
    assert bench.ratio(None, 2.0) is None
    assert bench.ratio(1.0, 0.0) is None
    assert bench.fmt_ratio(None) == "—"
    assert bench.fmt_ratio(0.96, 0.95) == "0.960 ✓"
    assert bench.fmt_ratio(0.94, 0.95) == "0.940 ✗"


def _parse(raw: bytes, *, connect: bool = False) -> tuple[tuple[int, bool], bytes]:
    async def go() -> tuple[tuple[int, bool], bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        answer = await bench.read_response(reader, connect=connect)
        return answer, await reader.read()

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("raw", "connect", "expected", "left"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloNEXT", False, (200, False), b"NEXT"),
        (b"HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 2\r\n\r\nno", False,
         (403, True), b""),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nNEXT", False,
         (200, False), b"NEXT"),
        (b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01", True, (200, False),
         b"\x16\x03\x01"),
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nnoX", True, (403, False), b"X"),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", False, (200, True), b""),
    ],
)  # fmt: skip
def test_responses_are_read_to_their_end_and_no_further(
    raw: bytes, connect: bool, expected: tuple[int, bool], left: bytes
) -> None:
    """Length, chunked, until-close and CONNECT answers leave the next response's bytes unread."""
    assert _parse(raw, connect=connect) == (expected, left)


def test_summary_takes_medians_over_rounds_and_counts_failures() -> None:
    """req/s, p50, p99 and CPU per request are each the median of the rounds' own figures."""
    rounds = [
        bench.Sample(ok=100, failed=0, seconds=1.0, latencies=(0.001,) * 100, cpu_ticks=10),
        bench.Sample(ok=200, failed=1, seconds=1.0, latencies=(0.002,) * 200, cpu_ticks=30),
        bench.Sample(ok=300, failed=0, seconds=1.0, latencies=(0.003,) * 300, cpu_ticks=60),
    ]
    summary = bench.summarise(rounds)
    assert summary.rps == 200.0
    assert summary.p50_ms == pytest.approx(2.0)
    assert summary.failed == 1
    tick_ms = 1000.0 / bench.CLK_TCK
    assert summary.cpu_ms == pytest.approx(0.15 * tick_ms)  # ticks per request 0.1, 0.15, 0.2


def test_squid_list_keeps_only_the_shortest_covering_domain() -> None:
    """Squid rejects `.m.facebook.com` beside `.facebook.com`: only parents are listed."""
    assert bench._parents("a.b.example.com") == ["b.example.com", "example.com"]
    domains = bench.squid_domains()
    assert ".facebook.com" in domains
    assert not [d for d in domains if d.endswith(".facebook.com") and d != ".facebook.com"]
