"""A year of audit logs at 10,000 events a day: how long search and the monthly report take.

Builds the log in a temporary folder the way the writer lays it out (one gzipped file per day,
hash-chained across files, the last day as the active file), then times `socialguard audit
search` and `report` on it, through the command line as a person would run them. The target is
under 10 seconds each. Run from the project root:

    .venv/bin/python benchmarks/audit_year.py [--days 365] [--per-day 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import gzip
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START = dt.date(2026, 1, 1)
USERS = [f"user{n:02d}" for n in range(50)] + ["j.smith", "m.patel"]
SERVICES = [
    ("facebook", "social-networking"),
    ("instagram", "multimedia-sharing"),
    ("tiktok", "multimedia-sharing"),
    ("x", "blogging"),
    ("reddit", "forums"),
    ("linkedin", "social-networking"),
    ("youtube", "multimedia-sharing"),
    ("tripadvisor", "review-and-opinion"),
    ("tinder", "dating"),
    ("tumblr", "blogging"),
]
DIGEST = "0123456789abcdef"


def day_lines(day: dt.date, count: int, rng: random.Random) -> list[str]:
    """One day's events, without seq and prev (the chain is added in order later)."""
    lines = []
    for n in range(count):
        seconds = 8 * 3600 + n * (10 * 3600 // count)
        ts = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
        service, category = SERVICES[rng.randrange(len(SERVICES))]
        user = USERS[rng.randrange(len(USERS))]
        roll = rng.random()
        event, reason, exemption, purpose = "access.blocked", "not_authorised", None, None
        if roll < 0.10:
            event, reason = "access.exception", "exemption"
            exemption, purpose = "EX-2026-001", "Maintain the practice's page"
        elif roll < 0.14:
            event, reason = "access.break_window", "break_window"
        fields = {
            "client_ip": f"10.10.{rng.randrange(4)}.{rng.randrange(2, 250)}",
            "user": user,
            "device": None,
            "zone": "staff",
            "host": f"www.{service}.com",
            "service": service,
            "category": category,
            "reason": reason,
            "exemption_id": exemption,
            "purpose": purpose,
            "policy_digest": DIGEST,
            "via": "connect",
            "event": event,
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "id": f"SG-{day:%y%m%d}{n:05d}",
        }
        lines.append(json.dumps(fields, separators=(",", ":"))[:-1])
    return lines


def compress(path: Path) -> None:
    data = path.read_bytes()
    path.with_name(path.name + ".gz").write_bytes(gzip.compress(data, compresslevel=6, mtime=0))
    path.unlink()


def build(directory: Path, days: int, per_day: int) -> int:
    """Write the log; returns its size on disk in bytes."""
    rng = random.Random(20261124)  # noqa: S311 - test data, not security
    prev = "genesis:" + "0" * 16
    seq = 0
    active = directory / "audit.jsonl"
    with concurrent.futures.ProcessPoolExecutor(max_workers=2) as pool:
        jobs = []
        for index in range(days):
            day = START + dt.timedelta(days=index)
            out = []
            for body in day_lines(day, per_day, rng):
                seq += 1
                line = f'{body},"seq":{seq},"prev":"{prev}"}}'
                prev = hashlib.sha256(line.encode()).hexdigest()
                out.append(line)
            text = "\n".join(out) + "\n"
            if index == days - 1:
                active.write_text(text)
            else:
                path = directory / f"audit.{day.isoformat()}.jsonl"
                path.write_text(text)
                jobs.append(pool.submit(compress, path))
        for job in jobs:
            job.result()
    return sum(p.stat().st_size for p in directory.iterdir())


def timed(label: str, args: list[str], directory: Path) -> float:
    command = [sys.executable, "-m", "socialguard", "audit", *args]
    command += ["--audit-log", str(directory / "audit.jsonl")]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, check=False, cwd=directory)  # noqa: S603
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{label} failed: {result.stderr.decode()[-500:]}")
    found = result.stdout.count(b"\n")
    print(f"  {label:<58} {elapsed:6.2f} s  ({found} lines out)")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="Build here and keep it (default: a temp dir).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        size = build(directory, args.days, args.per_day)
        print(
            f"built {args.days} days x {args.per_day} events = {args.days * args.per_day:,} "
            f"events, {size / 1e6:,.0f} MB on disk, in {time.perf_counter() - started:.1f} s"
        )
        month = (START + dt.timedelta(days=args.days // 2)).strftime("%Y-%m")
        first = f"{month}-01"
        last = f"{month}-28"
        figures = [
            timed("search --user j.smith (whole year)", ["search", "--user", "j.smith"], directory),
            timed(
                "search --service tiktok --event access.exception (year)",
                ["search", "--service", "tiktok", "--event", "access.exception", "--json"],
                directory,
            ),
            timed(
                f"search --service facebook --from {first} --to {last}",
                ["search", "--service", "facebook", "--from", first, "--to", last],
                directory,
            ),
            timed(f"report --month {month} (text)", ["report", "--month", month], directory),
            timed(
                f"report --month {month} --format html",
                ["report", "--month", month, "--format", "html"],
                directory,
            ),
        ]
        worst = max(figures)
        verdict = "within" if worst < 10 else "OVER"
        print(f"slowest {worst:.2f} s: {verdict} the 10 s target")


if __name__ == "__main__":
    main()
