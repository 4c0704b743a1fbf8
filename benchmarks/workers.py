"""`socialguard run --workers N`: requests/s and proxy CPU per request with 1 and 2 workers.

Allowed plain HTTP (keep-alive) and allowed HTTPS tunnels (a new CONNECT and TLS handshake for
every request), through one listening address, measured side by side in interleaved rounds;
the proxy's CPU is the sum over every worker process, read from /proc around each window.

On a machine with two cores the load client and the origin share the cores with the workers,
so whatever CPU they take is a core the second worker cannot have. The load therefore comes
from `hey` (Go; Debian's package) where it is installed: a new TLS connection costs it a
fraction of what it costs our asyncio client, which took about half a core of its own for the
tunnels. Without hey, two processes of that asyncio client. The figures are what this machine
gave, not what a hub whose clients are elsewhere would.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import csv
import io
import resource
import ssl
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from common import CLK_TCK, LOOPBACK, Server, cpu_ticks, interleaved, median
from load import Sample, Scenario, Summary, _load, summarise
from table import Row, fmt_ratio

from proxy import nginx_origin, socialguard

CLIENT_PROCESSES = 2


def worker_pids(server: Server) -> list[int]:
    """The processes doing the work: the workers of `--workers N`, or the process itself."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [int(p) for p in children] or [server.pid]


def _client(
    kind: str, port: int, target: str, cafile: str | None, concurrency: int, seconds: float
) -> tuple[int, int, list[float]]:
    tls = ssl.create_default_context(cafile=cafile) if cafile else None
    scenario = Scenario(kind, port, target, frozenset({200}), tls=tls)
    return asyncio.run(_load(scenario, concurrency, seconds))


def measure_many(
    pool: concurrent.futures.Executor,
    args: tuple[str, int, str, str | None],
    pids: Sequence[int],
    concurrency: int,
    seconds: float,
) -> Sample:
    """One window with the load split over the client processes; CPU summed over `pids`."""
    before, started = sum(cpu_ticks(p) for p in pids), time.perf_counter()
    share = max(1, concurrency // CLIENT_PROCESSES)
    futures = [pool.submit(_client, *args, share, seconds) for _ in range(CLIENT_PROCESSES)]
    results = [f.result() for f in futures]
    elapsed, after = time.perf_counter() - started, sum(cpu_ticks(p) for p in pids)
    ok = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    latencies = tuple(x for r in results for x in r[2])
    return Sample(ok, failed, elapsed, latencies, after - before)


def measure_hey(
    hey: str, proxy_port: int, url: str, pids: Sequence[int], concurrency: int, seconds: float
) -> Sample:
    """One window of `hey` through the proxy: keep-alive for http://, and for https:// a new
    tunnel (CONNECT + TLS) per request; CPU summed over `pids`."""
    argv = [hey, "-z", f"{seconds}s", "-c", str(concurrency), "-t", "15", "-o", "csv"]
    argv += ["-x", f"http://{LOOPBACK}:{proxy_port}"]
    if url.startswith("https://"):
        argv.append("-disable-keepalive")
    before, started = sum(cpu_ticks(p) for p in pids), time.perf_counter()
    done = subprocess.run(  # noqa: S603
        [*argv, url], capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    elapsed, after = time.perf_counter() - started, sum(cpu_ticks(p) for p in pids)
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    latencies = tuple(float(r["response-time"]) for r in rows if r.get("status-code") == "200")
    failed = len(rows) - len(latencies)
    return Sample(len(latencies), failed, elapsed, latencies, after - before)


def harness_seconds(origin: Server) -> float:
    """CPU seconds used so far by what is not the proxy: the origin (nginx and its worker) and
    the load clients this process has waited for (each `hey` run)."""
    workers = [p for p in worker_pids(origin) if p != origin.pid]
    ticks = cpu_ticks(origin.pid) + sum(cpu_ticks(p) for p in workers)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ticks / CLK_TCK + children.ru_utime + children.ru_stime


def cores(summary: Summary, others: Sequence[float]) -> str:
    """How many cores the proxy and the rest (client, origin) kept busy while measured."""
    proxy = summary.rps * (summary.cpu_ms or 0.0) / 1000
    rest = median(others) if others else 0.0
    return f"proxy {proxy:.2f} cores · load client and origin {rest:.2f} cores"


def bench_workers(
    workdir: Path,
    tools: dict[str, str | None],
    rounds: int,
    seconds: float,
    concurrency: int,
    log: Callable[[str], None],
) -> list[Row]:
    if not tools.get("nginx"):
        return [Row("8 workers", "all", "skipped: nginx is not installed and apt-get could not")]
    origin, hp, tp = nginx_origin(workdir, tools)
    servers = {
        "1 worker": socialguard("w1", workdir),
        "2 workers": socialguard("w2", workdir, "--workers", "2"),
    }
    cafile = str(workdir / "origin.pem")
    hey = tools.get("hey")
    client = "hey" if hey else f"{CLIENT_PROCESSES} asyncio client processes"
    log(f"load client: {client}")
    cases = {
        "(a) allowed HTTP, keep-alive": ("http-keepalive", f"{LOOPBACK}:{hp}", None),
        "(b) allowed HTTPS tunnel (CONNECT + TLS + 1 request)": (
            "tunnel",
            f"localhost:{tp}",
            cafile,
        ),
    }
    samples: dict[tuple[str, str], list[Sample]] = {}
    harness: dict[tuple[str, str], list[float]] = {}  # cores the client and origin used
    started: list[Server] = []
    try:
        origin.start()
        started.append(origin)
        for server in servers.values():
            log(f"starting {server.name}")
            server.start()
            started.append(server)
        time.sleep(3)  # every worker of the second listening
        pids = {name: worker_pids(s) for name, s in servers.items()}
        log(f"worker processes: {pids}")
        with concurrent.futures.ProcessPoolExecutor(CLIENT_PROCESSES) as pool:

            def window(
                name: str, kind: str, target: str, ca: str | None, c: int, t: float
            ) -> Sample:
                if hey is None:
                    args = (kind, servers[name].port, target, ca)
                    return measure_many(pool, args, pids[name], c, t)
                url = f"{'https' if kind == 'tunnel' else 'http'}://{target}/"
                return measure_hey(hey, servers[name].port, url, pids[name], c, t)

            for kind, target, ca in cases.values():
                for name in servers:  # warm up
                    window(name, kind, target, ca, 4, 1 if hey else 0.3)
            for r, name in interleaved(list(servers), rounds):
                log(f"round {r + 1}/{rounds}: {name}")
                for label, (kind, target, ca) in cases.items():
                    before = harness_seconds(origin)
                    sample = window(name, kind, target, ca, concurrency, seconds)
                    used = (harness_seconds(origin) - before) / sample.seconds
                    samples.setdefault((label, name), []).append(sample)
                    harness.setdefault((label, name), []).append(used)
    finally:
        for server in reversed(started):
            server.stop()
    rows = []
    for label in cases:
        one = summarise(samples.get((label, "1 worker"), []))
        two = summarise(samples.get((label, "2 workers"), []))
        rows.append(
            Row(
                "8 workers",
                f"{label}, concurrency {concurrency}, load from {client}",
                f"2 workers: {two.cell()}",
                f"1 worker: {one.cell()}",
                fmt_ratio(two.rps / one.rps if one.rps else None, 1.6),
                "2 workers req/s ≥ 1.6 x 1 worker's",
            )
        )
        rows.append(
            Row(
                "8 workers",
                f"{label}: where the machine's CPU went (medians)",
                f"2 workers: {cores(two, harness.get((label, '2 workers'), []))}",
                f"1 worker: {cores(one, harness.get((label, '1 worker'), []))}",
                "",
                "",
            )
        )
    return rows
