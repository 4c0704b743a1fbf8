"""The audit log through the real proxy: concurrent blocks chain, kill -9 leaves a log that
verifies, a restart continues the same chain, and no path or query string is ever recorded.
Loopback only: blocked plain-HTTP requests are answered by the proxy and go nowhere."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.loopback import free_port
from tests.proxy.conftest import RunningProxy, start, stop

SOCIALGUARD = [sys.executable, "-m", "socialguard"]


def blocked_request(proxy: RunningProxy, url: str, host: str | None = None) -> int:
    """One plain-HTTP request through the proxy (with another Host header if given); its HTTP
    status (0 if none)."""
    header = ["-H", f"Host: {host}"] if host else []
    result = subprocess.run(
        [
            "curl",
            "-s",
            "-m",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-x",
            proxy.url,
            *header,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return int(result.stdout or 0)


def audit_verify(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SOCIALGUARD, "audit", "verify", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_forty_concurrent_blocks_are_forty_chained_lines(run_proxy: Any) -> None:
    """40 blocked requests at once: all 40 counted (repeats within 10 s are one event with a
    `count`, written by the time the proxy stops), one unbroken chain, no paths or queries."""
    proxy = run_proxy()
    urls = [f"http://www.facebook.com/profile/{n}?patient=NHS{n:04d}" for n in range(40)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(lambda url: blocked_request(proxy, url), urls))
    assert statuses == [403] * 40
    stop(proxy)
    events = proxy.events()
    blocked = [e for e in events if e["event"] == "access.blocked"]
    assert sum(e.get("count", 1) for e in blocked) == 40
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    verdict = audit_verify(proxy.audit)
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    assert f"OK: {len(events)} events" in verdict.stdout
    text = proxy.audit.read_text()
    assert "patient" not in text
    assert "NHS00" not in text
    assert "/profile" not in text


def test_kill_9_during_a_burst_then_restart_continues_the_chain(tmp_path: Path) -> None:
    """kill -9 mid-burst leaves a log whose every complete line verifies; a new process on the
    same log chains on from it (past any torn line), and verify passes over both runs."""
    directory = tmp_path / "gateway"
    directory.mkdir()
    first = start(directory)
    try:
        stop_burst = threading.Event()

        def burst() -> None:
            # Each request refused for its own unreadable name: distinct blocks, so each is a
            # line of its own (identical ones within 10 s would be one counted event).
            n = 0
            while not stop_burst.is_set():
                blocked_request(first, f"http://www.tiktok.com/{n}", host=f"bad!{id(n)}-{n}")
                n += 1

        workers = [threading.Thread(target=burst) for _ in range(4)]
        for worker in workers:
            worker.start()
        first.events(wait_for=30, seconds=20)
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait(10)
        stop_burst.set()
        for worker in workers:
            worker.join(30)
    finally:
        stop(first)
    before = first.audit.read_bytes()
    assert before.count(b"\n") >= 30
    after_kill = audit_verify(first.audit)
    # Every complete line chains; only a torn last line may be reported.
    assert after_kill.returncode == 0 or "torn" in after_kill.stdout, after_kill.stdout
    assert "Traceback" not in after_kill.stdout + after_kill.stderr

    second = start(directory)
    try:
        for n in range(10):
            assert blocked_request(second, f"http://www.reddit.com/{n}") == 403
    finally:
        stop(second)
    events = second.events()
    assert sum(e.get("count", 1) for e in events if e.get("host") == "www.reddit.com") == 10
    data = first.audit.read_bytes()
    assert data.startswith(before.rstrip(b"\n"))  # nothing already written was lost or changed
    verdict = audit_verify(first.audit)
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    lines = [
        json.loads(ln) for ln in data.splitlines() if ln.startswith(b"{") and ln.endswith(b"}")
    ]
    starts = [e for e in lines if str(e.get("prev", "")).startswith("genesis:")]
    assert len(starts) == 1  # one chain across both processes


def test_keyed_log_through_the_proxy(tmp_path: Path) -> None:
    """With audit.hmac_key_file in policy.yaml, the proxy signs every line; the log verifies
    with the key, and a line appended without it is caught."""
    directory = tmp_path / "gateway"
    (directory / "config").mkdir(parents=True)
    key = directory / "audit.key"
    key.write_text("k" * 44 + "\n")
    key.chmod(0o600)
    policy = directory / "config" / "policy.yaml"
    policy.write_text(f"audit:\n  hmac_key_file: {key}\n  durability: fsync\n")
    proxy = start(directory, "--config", str(policy))
    try:
        for n in range(5):
            assert blocked_request(proxy, f"http://www.facebook.com/{n}") == 403
        proxy.events(wait_for=5)
    finally:
        stop(proxy)
    lines = proxy.audit.read_text().splitlines()
    assert all('"mac":"' in ln for ln in lines)
    ok = subprocess.run(
        [*SOCIALGUARD, "audit", "verify", "--config", str(policy), str(proxy.audit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=directory,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "HMAC checked" in ok.stdout
    last = json.loads(lines[-1])
    forged = json.dumps({"event": "access.blocked", "seq": last["seq"] + 1, "prev": "x"})
    with proxy.audit.open("a") as f:
        f.write(forged + "\n")
    caught = subprocess.run(
        [*SOCIALGUARD, "audit", "verify", "--config", str(policy), str(proxy.audit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=directory,
    )
    assert caught.returncode == 1
    assert "unsigned" in caught.stdout


def test_missing_key_file_stops_run_with_a_message(tmp_path: Path) -> None:
    """run with audit.hmac_key_file naming no file exits 1 with the fix, before listening."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"audit:\n  hmac_key_file: {tmp_path / 'absent.key'}\n")
    result = subprocess.run(
        [
            *SOCIALGUARD,
            "run",
            "--config",
            str(policy),
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--audit-log",
            str(tmp_path / "audit.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "absent.key: the audit HMAC key file does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_record_paths_true_records_the_path(tmp_path: Path) -> None:
    """Only with audit.record_paths: true does a blocked request's path reach the log."""
    directory = tmp_path / "gateway"
    directory.mkdir()
    policy = directory / "policy.yaml"
    policy.write_text("audit:\n  record_paths: true\n")
    proxy = start(directory, "--config", str(policy))
    try:
        assert blocked_request(proxy, "http://www.facebook.com/groups/42?ref=x") == 403
        events = proxy.events(wait_for=1)
    finally:
        stop(proxy)
    [blocked] = [e for e in events if e["event"] == "access.blocked"]
    assert blocked["path"] == "/groups/42?ref=x"
