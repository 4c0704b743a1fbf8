"""What every benchmark section shares: statistics, interleaving, ports, /proc readings and
the servers it starts (loopback only)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
VENV_BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
BLOCKED_HOST = "www.facebook.com"
PASSWORD = "bench-password"  # noqa: S105 - a throwaway htpasswd made for this run
# The embedded defaults, with the benchmarks' loopback origins allowed: since the gate issue a
# proxy refuses loopback destinations by default, so without this every request would be a 403.
PROXY_POLICY = (
    "# embedded defaults; the benchmarks' origins are on loopback\n"
    "destinations: {allow: [127.0.0.0/8, '::1/128']}\n"
)
# Scripts other parts of the project keep; run as they are, their output included verbatim.
# (file, what it measures, arguments for --quick)
SUBSCRIPTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("audit_durability.py", "audit write cost per durability setting", ("--events", "300")),
    ("audit_year.py", "a year of audit logs searched and reported", ("--days", "31")),
    ("catalog_import.py", "catalog import of a million-line list", ("100000",)),
)


# -- statistics -------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least the first
    return ordered[int(min(rank, len(ordered))) - 1]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def round_order(configs: Sequence[str], r: int) -> list[str]:
    """The configurations in round r: A B C, then C B A, so a drift hits each alike."""
    return list(configs) if r % 2 == 0 else list(reversed(configs))


def interleaved(configs: Sequence[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, config) for every round, in round_order."""
    for r in range(rounds):
        for config in round_order(configs, r):
            yield r, config


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


# -- processes ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
            return True
        time.sleep(0.1)
    return False


def cpu_ticks(pid: int) -> int:
    """User + system clock ticks of a process, all its threads included (/proc/PID/stat)."""
    data = Path(f"/proc/{pid}/stat").read_text()
    fields = data[data.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclasses.dataclass
class Server:
    """A proxy (or origin) process started by the benchmark, on loopback."""

    name: str
    argv: list[str]
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.workdir / f"{self.name}.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own argv
            self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        if not wait_port(self.port, 60):
            self.stop()
            tail = (self.workdir / f"{self.name}.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"{self.name} did not listen on {self.port}:\n{tail}")

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def ensure_tools(names: Sequence[str]) -> dict[str, str | None]:
    """Debian packages the benchmark drives; apt-get installs those missing (root, as in CI)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    found = {n: shutil.which(n, path=path) for n in names}
    missing = [n for n, p in found.items() if p is None]
    if missing and shutil.which("apt-get"):
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(  # noqa: S603
            [*sudo, "apt-get", "install", "-y", "-qq", *missing],
            capture_output=True,
            env=env,
            check=False,
            timeout=600,
        )
        found = {n: shutil.which(n, path=path) for n in names}
    return found
