"""`make bench`: what socialguard costs beside bare mitmproxy, as the catalogue grows, and beside
Squid — measured on loopback only (127.0.0.1), bounded in time, printed as one table.

Ratios are measured side by side: every configuration runs in the same rounds, interleaved
(A B C, then C B A, …), and each figure is the median over the rounds. Absolute figures drift on
a shared machine; the ratios are what to compare. Proxy CPU per request is read from
/proc/PID/stat (user + system time of the proxy process) and is steadier than requests/s, which
also moves with the load client and the origin sharing the same cores.

    .venv/bin/python benchmarks/run.py            # the full run (about 10 minutes)
    .venv/bin/python benchmarks/run.py --quick    # a short run (about 2 minutes)

Needs nginx (the origin) and squid (the peer) from Debian; installs them with apt-get when
missing, as .ci/install-system-packages does. Sections whose tool is missing are reported as
skipped, never guessed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from catalog_scale import bench_catalog_scale, child_catalog_load
from check import bench_check
from common import BENCH, ROOT, SUBSCRIPTS, ensure_tools
from decide import bench_decide
from table import Row, print_table
from workers import bench_workers

from proxy import bench_proxy


# -- 5 and others: the scripts other parts of the project keep ----------------------------------
def run_subscripts(quick: bool, log: Callable[[str], None]) -> list[tuple[str, str]]:
    out = []
    for name, what, quick_args in SUBSCRIPTS:
        path = BENCH / name
        if not path.exists():
            out.append((f"{name} ({what})", "not present in this tree: skipped"))
            continue
        argv = [sys.executable, str(path), *(quick_args if quick else ())]
        log(f"running {' '.join(argv[1:])}")
        started = time.perf_counter()
        try:
            done = subprocess.run(  # noqa: S603
                argv, capture_output=True, text=True, check=False, timeout=300, cwd=ROOT
            )
            text = done.stdout.strip() or done.stderr.strip()[-500:]
            if done.returncode != 0:
                text += f"\n(exit status {done.returncode})"
        except subprocess.TimeoutExpired:
            text = "gave up after 300 s"
        shown = " ".join(["benchmarks/" + name, *argv[2:]])
        out.append((f"{shown} — {what} ({time.perf_counter() - started:.0f} s)", text))
    return out


# -- the machine ---------------------------------------------------------------------------------
def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    try:
        from importlib.metadata import version  # noqa: PLC0415

        mitm = version("mitmproxy")
    except Exception:  # noqa: BLE001 - only a label
        mitm = "?"
    return (
        f"{os.cpu_count()} cores, {model}; Python {platform.python_version()}; mitmproxy {mitm}; "
        f"{platform.system()} {platform.release()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (about 2 minutes)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 2)")
    parser.add_argument("--seconds", type=float, help="seconds per measured window")
    parser.add_argument(
        "--only",
        help="comma-separated sections: decide,catalog,proxy,check,scripts (the default), "
        "and workers (run --workers 1 vs 2; only when named)",
    )
    parser.add_argument("--child-catalog-load", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_catalog_load:
        child_catalog_load(args.child_catalog_load)
        return 0
    rounds = args.rounds or (2 if args.quick else 5)
    seconds = args.seconds or (0.5 if args.quick else 1.0)
    concurrencies = [10] if args.quick else [1, 10, 50]
    only = set((args.only or "decide,catalog,proxy,check,scripts").split(","))
    began = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f} s] {message}", file=sys.stderr, flush=True)

    command = "benchmarks/run.py " + " ".join(sys.argv[1:])
    rows: list[Row] = []
    scripts: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="socialguard-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        if "decide" in only:
            log("1. decide()")
            sizes = [1_000, 100_000, 1_000_000]
            rows += bench_decide(rounds, 2_000 if args.quick else 20_000, sizes)
        if "catalog" in only:
            count = 100_000 if args.quick else 1_000_000
            log(f"2. loading a {count:,}-domain catalogue")
            rows += bench_catalog_scale(count, workdir)
        if "proxy" in only:
            tools = ensure_tools(["nginx", "squid", "openssl"])
            log("3/4. the proxy path: " + ", ".join(f"{k}={v}" for k, v in tools.items()))
            proxy_dir = workdir / "proxy"
            proxy_dir.mkdir()
            rows += bench_proxy(proxy_dir, tools, rounds, seconds, concurrencies, log)
        if "workers" in only:
            tools = ensure_tools(["nginx", "openssl", "hey"])
            log("8. run --workers 1 vs 2")
            workers_dir = workdir / "workers"
            workers_dir.mkdir()
            rows += bench_workers(workers_dir, tools, rounds, seconds, 20, log)
        if "check" in only:
            log("7. bulk check")
            rows += bench_check(workdir, 1 if args.quick else 3)
        if "scripts" in only:
            scripts = run_subscripts(args.quick, log)
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# socialguard benchmarks — {today}")
    print(f"machine: {machine()}")
    print(
        f"command: {command.strip()} ({rounds} rounds, {seconds:g} s windows, "
        f"concurrency {', '.join(map(str, concurrencies))}; took "
        f"{time.monotonic() - began:.0f} s)"
    )
    print()
    print(print_table(rows))
    for title, text in scripts:
        print()
        print(f"## {title}")
        print()
        print("\n".join("    " + line for line in text.splitlines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
