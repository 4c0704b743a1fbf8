"""Several proxy processes on one listening address (`socialguard run --workers N`).

One mitmproxy process uses one core. With SO_REUSEPORT each worker binds the same address and
the kernel spreads new connections across them; every worker accepts its own connections, so
each client's own address (for zones and devices) is what the worker sees. mitmproxy 12 binds
with `asyncio.start_server(handler, host, port)` and no way to ask for SO_REUSEPORT, so a
worker replaces that one call for TCP listeners (checked against mitmproxy 12.2: the method
is `AsyncioServerInstance.listen`); the parent process only starts and stops the workers.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from mitmproxy.proxy import mode_servers

# The supervisor's pid, handed to each worker so it can tell whether it is already orphaned.
PARENT_ENV = "SOCIALGUARD_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def share_listening_address() -> None:
    """Make this process's TCP listeners bind with SO_REUSEPORT (workers only)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise OSError("this system has no SO_REUSEPORT: run one worker per address")
    instance: Any = mode_servers.AsyncioServerInstance
    original = instance.listen
    if getattr(original, "socialguard_shared", False):
        return

    @functools.wraps(original)
    async def listen(self: Any, host: str, port: int) -> list[Any]:
        if self.mode.transport_protocol != "tcp" or port == 0:
            return list(await original(self, host, port))
        return [await asyncio.start_server(self.handle_stream, host, port, reuse_port=True)]

    listen.socialguard_shared = True  # type: ignore[attr-defined]
    instance.listen = listen


def stop_with_supervisor() -> None:
    """End this worker when the supervisor ends, however it ends (`kill -9` included).

    Without it, workers of a killed `run --workers N` keep the address and the audit files,
    and the next start shares the port with them (SO_REUSEPORT) and runs a second set. Linux
    sends SIGTERM, which mitmproxy answers with an orderly shutdown; where prctl is missing
    nothing changes (systemd's KillMode=control-group still stops every worker).
    """
    parent = os.environ.get(PARENT_ENV)
    if parent is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if str(os.getppid()) != parent:  # the supervisor ended before the signal was asked for
        os.kill(os.getpid(), signal.SIGTERM)


class SiblingRecorder:
    """The audit log of worker 2, 3, …: exemption changes are left to worker 1.

    Every worker loads and reloads the policy itself (so each records its `policy.loaded`),
    but one change to the exemptions list is one event in the record, not one per worker.
    """

    def __init__(self, audit: Any) -> None:
        self._audit = audit

    def record(self, event: str, fields: dict[str, Any]) -> Any:
        if str(event).startswith("exemption."):
            return dict(fields)
        return self._audit.record(event, fields)


def supervise(commands: Sequence[Sequence[str]], grace_seconds: float = 10.0) -> int:
    """Start one process per command and wait; SIGTERM/SIGINT are passed on to every worker.

    If one worker stops by itself the others are stopped too and its exit code returned, so
    systemd (Restart=on-failure) restarts the whole set rather than running short-handed.
    """
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    children = [subprocess.Popen(list(command), env=env) for command in commands]  # noqa: S603
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        while True:
            finished = [c for c in children if c.poll() is not None]
            if len(finished) == len(children):
                break
            if finished and not stopping:
                code = next(c.returncode for c in finished) or 1
                sys.stderr.write(
                    f"socialguard: worker (pid {finished[0].pid}) stopped with exit code "
                    f"{finished[0].returncode}; stopping the other workers\n"
                )
                stop(signal.SIGTERM, None)
            time.sleep(0.2)
        deadline = time.monotonic() + grace_seconds
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code == 0 and not stopping:
        code = max((c.returncode for c in children), default=0)
    return code


def worker_command(index: int, arguments: Sequence[str]) -> list[str]:
    """How the parent starts worker `index` (1-based): this Python, this package."""
    return [sys.executable, "-m", "socialguard", "run", *arguments, "--worker-index", str(index)]
