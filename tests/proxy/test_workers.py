"""`socialguard run --workers 2`: two processes on one address, each with its own audit chain,
and `socialguard audit` reading both as one verified record."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import subprocess
import time
from pathlib import Path

from tests.loopback import LOOPBACK, free_port
from tests.proxy.conftest import SOCIALGUARD, RunningProxy, start, stop


def _sg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SOCIALGUARD, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_blocks_from_both_workers_are_one_verified_record(tmp_path: Path) -> None:
    proxy: RunningProxy = start(tmp_path, "--workers", "2")
    try:
        # Both workers listen before the requests go: each writes policy.loaded when ready.
        workers = [tmp_path / "audit.w1.jsonl", tmp_path / "audit.w2.jsonl"]
        for _ in range(300):
            if all(w.exists() for w in workers) and all(w.read_text() for w in workers):
                break
            time.sleep(0.1)
        url = f"http://{LOOPBACK}:{proxy.port}"

        def get(i: int) -> str:
            # A new connection each time: the kernel spreads connections across workers.
            return subprocess.run(
                ["curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", "-x", url,
                 f"http://www.tiktok.com/{i}"],
                capture_output=True, text=True, timeout=20, check=False,
            ).stdout  # fmt: skip

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(get, range(60)))
        assert codes == ["403"] * 60
    finally:
        stop(proxy)
    assert not (tmp_path / "audit.jsonl").exists()  # the parent writes nothing itself
    per_worker = [[json.loads(line) for line in w.read_text().splitlines()] for w in workers]
    blocked = [[e for e in events if e["event"] == "access.blocked"] for events in per_worker]
    assert all(blocked), "both workers took connections"
    # Repeats of one block within a short window are one event with a count.
    assert sum(int(e.get("count", 1)) for chain in blocked for e in chain) == 60
    verified = _sg("audit", "verify", str(proxy.audit))
    assert verified.returncode == 0, verified.stdout
    assert "2 chains" in verified.stdout
    assert "every chain holds" in verified.stdout
    found = _sg("audit", "search", "--service", "tiktok", "--audit-log", str(proxy.audit), "--json")
    events = [json.loads(line) for line in found.stdout.splitlines()]
    assert sum(int(e.get("count", 1)) for e in events if e["event"] == "access.blocked") == 60
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)  # one timeline
    # An edited line in one worker's chain breaks the record.
    lines = workers[1].read_text().splitlines()
    lines[1] = lines[1].replace("tiktok", "youtube")
    workers[1].write_text("\n".join(lines) + "\n")
    broken = _sg("audit", "verify", str(proxy.audit))
    assert broken.returncode == 1
    assert "audit.w2.jsonl" in broken.stdout


def test_a_worker_binds_the_address_beside_its_siblings() -> None:
    """The listen check refuses an address that is taken, before any worker starts."""
    port = free_port()
    with socket.socket() as taken:
        taken.bind((LOOPBACK, port))
        taken.listen()
        result = _sg("run", "--workers", "2", "--listen", f"{LOOPBACK}:{port}")
    assert result.returncode == 1
    assert "cannot listen" in result.stderr


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for whoever adopted it to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_end_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """`kill -9` of the parent leaves no worker holding the address or the audit files."""
    proxy: RunningProxy = start(tmp_path, "--workers", "2")
    try:
        deadline = time.monotonic() + 60
        children: list[int] = []
        while time.monotonic() < deadline and len(children) < 2:
            children_file = Path(f"/proc/{proxy.process.pid}/task/{proxy.process.pid}/children")
            children = [int(pid) for pid in children_file.read_text().split()]
            time.sleep(0.1)
        assert len(children) == 2
        proxy.process.kill()
        proxy.process.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(map(_running, children)):
            time.sleep(0.1)
        left = [p for p in children if _running(p)]
    finally:
        stop(proxy)
    assert left == [], f"workers {left} outlived their supervisor"
    with socket.socket() as probe:
        assert probe.connect_ex((LOOPBACK, proxy.port)) != 0  # no one listens any more
