"""Fixtures that run the real proxy (`socialguard run` as a subprocess) on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from tests.loopback import (
    LOOPBACK,
    free_port,
    loopback_internet,
    terminate,
    tls_origin,
    wait_for_port,
)

SOCIALGUARD = [sys.executable, "-m", "socialguard"]
PASSWORD = "secret"
# The tests' origins, upstreams and echo servers live on loopback, which the proxy refuses as
# a destination by default (its own services are there): every test proxy's policy lets it in,
# as the acceptance checks' do (../shared/acceptance/lib.sh).
LOOPBACK_ALLOWED = 'destinations: {allow: ["127.0.0.0/8", "::1/128"]}\n'


def loopback_allowed(args: tuple[str, ...], tmp: Path) -> list[str]:
    """The arguments with a policy that may reach loopback: the given --config (or the default
    config/policy.yaml where the proxy runs) gets the key added in place, so a test that edits
    it later keeps it; else a policy holding only it."""
    args_list = list(args)
    default = tmp / "config" / "policy.yaml"  # a proxy run on its default paths
    if "--config" in args_list or default.exists():
        path = (
            Path(args_list[args_list.index("--config") + 1]) if "--config" in args_list else default
        )
        text = path.read_text() if path.exists() else ""
        if "destinations:" not in text:
            path.write_text(text.rstrip("\n") + "\n" + LOOPBACK_ALLOWED)
        return args_list
    path = tmp / "policy-loopback.yaml"
    path.write_text(LOOPBACK_ALLOWED)
    return [*args_list, "--config", str(path)]


@dataclass
class RunningProxy:
    """A `socialguard run` process and what it writes."""

    port: int
    audit: Path
    process: subprocess.Popen[bytes]
    log: Path
    tmp: Path
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def events(self, wait_for: int = 0, seconds: float = 5.0) -> list[dict[str, Any]]:
        """The audit events written so far (waiting until there are at least `wait_for`)."""
        deadline = time.monotonic() + seconds
        while True:
            lines = self.audit.read_text().splitlines() if self.audit.exists() else []
            events = [json.loads(line) for line in lines if line.strip()]
            access = [e for e in events if e["event"].startswith("access.")]
            if len(access) >= wait_for or time.monotonic() > deadline:
                return events
            time.sleep(0.05)

    def curl(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        auth = ["-U", f"{user}:{PASSWORD}"] if user else []
        return subprocess.run(
            ["curl", "-sS", "-m", "10", "-x", self.url, *auth, *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )


@pytest.fixture(scope="session")
def htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "htpasswd"
    lines = []
    for user in ("j.smith", "k.jones", "a.nother", "m.patel"):
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        lines.append(f"{user}:{hashed}\n")
    path.write_text("".join(lines))
    return path


@pytest.fixture(scope="session")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    with tls_origin(tmp_path_factory.mktemp("origin")) as served:
        yield served


@pytest.fixture(scope="session")
def internet_server() -> Iterator[tuple[int, list[str]]]:
    with loopback_internet() as served:
        yield served


@pytest.fixture
def internet(internet_server: tuple[int, list[str]]) -> tuple[int, list[str]]:
    """The loopback internet, its record emptied: each test sees only what it let through."""
    internet_server[1].clear()
    return internet_server


def start(tmp: Path, *args: str, env: dict[str, str] | None = None) -> RunningProxy:
    port = free_port()
    audit = tmp / "audit.jsonl"
    log = tmp / "proxy.log"
    command = [*SOCIALGUARD, "run", "--listen", f"{LOOPBACK}:{port}", "--audit-log", str(audit)]
    command += ["--confdir", str(tmp / "mitmproxy"), *loopback_allowed(args, tmp)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            env={**os.environ, **(env or {})},
        )
    if not wait_for_port(port, 30):
        process.kill()
        raise AssertionError(f"socialguard did not listen: {log.read_text()[-2000:]}")
    return RunningProxy(port=port, audit=audit, process=process, log=log, tmp=tmp, args=command)


def stop(proxy: RunningProxy) -> None:
    terminate(proxy.process)


@pytest.fixture
def run_proxy(tmp_path: Path) -> Iterator[Any]:
    """Start `socialguard run` with extra arguments; every proxy started is stopped after."""
    started: list[RunningProxy] = []

    def _start(*args: str, env: dict[str, str] | None = None) -> RunningProxy:
        directory = tmp_path / f"proxy{len(started)}"
        directory.mkdir()
        proxy = start(directory, *args, env=env)
        started.append(proxy)
        return proxy

    yield _start
    for proxy in started:
        stop(proxy)
