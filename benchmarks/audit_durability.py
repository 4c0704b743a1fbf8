"""How much latency each audit durability setting adds to a decision, measured on this disk.

Every block and exception is on disk before it is acted on, so `AuditLog.record` sits on the
decision's path. This writes events with each setting, from one thread (mitmproxy calls record
from its event loop) and from several (many requests at once), and prints p50/p99 of record()
and what the sync adds over an unsynced write. Run from the project root:

    .venv/bin/python benchmarks/audit_durability.py [--events 2000] [--dir /var/lib/socialguard]

Use --dir on the disk the gateway's log lives on: tmpfs or a RAM disk makes fsync look free.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

from socialguard.audit.log import AuditLog, AuditOptions

FIELDS = {
    "client_ip": "10.10.0.7",
    "user": "j.smith",
    "device": None,
    "zone": "staff",
    "host": "www.facebook.com",
    "service": "facebook",
    "category": "social-networking",
    "reason": "not_authorised",
    "exemption_id": None,
    "purpose": None,
    "policy_digest": "0123456789abcdef",
}


def run(directory: Path, options: AuditOptions, events: int, threads: int) -> list[float]:
    """Latencies (ms) of `events` records spread over `threads` threads."""
    path = directory / f"audit-{options.durability}-{options.group_commit_ms}-{threads}.jsonl"
    log = AuditLog(path, options=options)
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        mine = []
        for _ in range(count):
            start = time.perf_counter()
            log.record("access.blocked", FIELDS)
            mine.append((time.perf_counter() - start) * 1000)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=worker, args=(events // threads,)) for _ in range(threads)]

    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    log.close()
    path.unlink()
    latencies.append(-elapsed)  # smuggled out: the wall time, for throughput
    return latencies


def percentiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    settings: list[tuple[str, AuditOptions]] = [
        ("no sync (baseline)", AuditOptions(durability="group", group_commit_ms=0)),
        ("fsync per event", AuditOptions(durability="fsync")),
        ("group commit, 0 ms", AuditOptions(durability="group", group_commit_ms=0)),
        ("group commit, 2 ms", AuditOptions(durability="group", group_commit_ms=2)),
    ]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        print(f"disk: {directory} ({args.events} events per row)")
        print(
            f"{'setting':<22}{'threads':>8}{'p50 ms':>9}{'p99 ms':>9}{'+p50':>8}{'+p99':>8}"
            f"{'ev/s':>9}"
        )
        baseline: dict[int, tuple[float, float]] = {}
        for threads in (1, 8):
            for name, options in settings:
                if name.startswith("no sync"):
                    with mock.patch("socialguard.audit.log.os.fsync", return_value=None):
                        measured = run(directory, options, args.events, threads)
                else:
                    measured = run(directory, options, args.events, threads)
                elapsed = -measured.pop()
                p50, p99 = percentiles(measured)
                if name.startswith("no sync"):
                    baseline[threads] = (p50, p99)
                b50, b99 = baseline[threads]
                print(
                    f"{name:<22}{threads:>8}{p50:>9.3f}{p99:>9.3f}{p50 - b50:>8.3f}"
                    f"{p99 - b99:>8.3f}{len(measured) / elapsed:>9.0f}"
                )


if __name__ == "__main__":
    main()
