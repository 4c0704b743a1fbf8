"""The load client: keep-alive and new-connection HTTP and CONNECT requests on loopback, with
the proxy's CPU read from /proc around each window."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import ssl
import time
from collections.abc import Sequence

from common import CLK_TCK, LOOPBACK, cpu_ticks, median, percentile


# -- the load client: HTTP/1.1 through a proxy, asyncio ------------------------------------------
async def read_response(reader: asyncio.StreamReader, *, connect: bool = False) -> tuple[int, bool]:
    """Read one response; returns (status, the server will close the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked = close = False
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        key = key.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif key in (b"connection", b"proxy-connection") and b"close" in value.lower():
            close = True
    if connect and 200 <= status < 300:
        return status, False
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
    elif status not in (204, 304):
        await reader.read()
        close = True
    return status, close


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One kind of request through one proxy."""

    kind: str  # http-keepalive | http-close | tunnel | blocked-connect | blocked-http
    proxy_port: int
    target: str  # host:port
    expect: frozenset[int]
    auth: str | None = None  # user:password
    tls: ssl.SSLContext | None = None

    def auth_header(self) -> bytes:
        if self.auth is None:
            return b""
        token = base64.b64encode(self.auth.encode()).decode()
        return f"Proxy-Authorization: Basic {token}\r\n".encode()

    def request(self, *, close: bool, accept: str = "*/*") -> bytes:
        host = self.target
        line = f"GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\n"
        return (
            line.encode()
            + self.auth_header()
            + (b"Connection: close\r\n" if close else b"")
            + b"\r\n"
        )


class Client:
    """One simulated user: sends requests of one scenario one after another."""

    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def drop(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            self.conn = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(LOOPBACK, self.s.proxy_port)

    async def once(self) -> bool:
        s = self.s
        if s.kind in ("http-keepalive", "blocked-http"):
            if self.conn is None:
                self.conn = await self._open()
            reader, writer = self.conn
            accept = "text/html" if s.kind == "blocked-http" else "*/*"
            writer.write(s.request(close=False, accept=accept))
            status, close = await read_response(reader)
            if close:
                self.drop()
            return status in s.expect
        reader, writer = await self._open()
        try:
            if s.kind == "http-close":
                writer.write(s.request(close=True))
                status, _ = await read_response(reader)
                return status in s.expect
            connect = f"CONNECT {s.target} HTTP/1.1\r\nHost: {s.target}\r\n".encode()
            writer.write(connect + s.auth_header() + b"\r\n")
            status, _ = await read_response(reader, connect=True)
            if s.kind == "blocked-connect" or status != 200:
                return status in s.expect
            if s.tls is None:
                raise ValueError("a tunnel scenario needs a TLS context")
            await writer.start_tls(s.tls, server_hostname=s.target.rsplit(":", 1)[0])
            writer.write(
                f"GET / HTTP/1.1\r\nHost: {s.target}\r\nConnection: close\r\n\r\n".encode()
            )
            status, _ = await read_response(reader)
            return status == 200
        finally:
            writer.close()


@dataclasses.dataclass(frozen=True)
class Sample:
    """One measured window: requests, failures, latencies and the proxy's CPU."""

    ok: int
    failed: int
    seconds: float
    latencies: tuple[float, ...]
    cpu_ticks: int

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float | None:
        return self.cpu_ticks * 1000.0 / CLK_TCK / self.ok if self.ok else None


async def _load(
    scenario: Scenario, concurrency: int, seconds: float
) -> tuple[int, int, list[float]]:
    latencies: list[float] = []
    failed = 0
    deadline = time.perf_counter() + seconds

    async def user() -> None:
        nonlocal failed
        client = Client(scenario)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                ok = await asyncio.wait_for(client.once(), 15)
            except (
                OSError,
                EOFError,
                ValueError,
                IndexError,
                TimeoutError,
                asyncio.IncompleteReadError,
            ):
                ok = False
                client.drop()
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                failed += 1
                await asyncio.sleep(0.01)
        client.drop()

    await asyncio.gather(*(user() for _ in range(concurrency)))
    return len(latencies), failed, latencies


def measure(scenario: Scenario, pid: int, concurrency: int, seconds: float) -> Sample:
    before, started = cpu_ticks(pid), time.perf_counter()
    ok, failed, latencies = asyncio.run(_load(scenario, concurrency, seconds))
    elapsed, after = time.perf_counter() - started, cpu_ticks(pid)
    return Sample(ok, failed, elapsed, tuple(latencies), after - before)


@dataclasses.dataclass(frozen=True)
class Summary:
    """Medians over the rounds of one configuration."""

    rps: float
    p50_ms: float | None
    p99_ms: float | None
    cpu_ms: float | None
    failed: int
    rounds: int

    def cell(self) -> str:
        if self.rps == 0:
            return f"no answer ({self.failed} failed)"
        text = f"{self.rps:,.0f} req/s"
        if self.p50_ms is not None and self.p99_ms is not None:
            text += f" · p50 {self.p50_ms:.2f} / p99 {self.p99_ms:.2f} ms"
        if self.cpu_ms is not None:
            text += f" · {self.cpu_ms:.3f} ms CPU/req"
        if self.failed:
            text += f" · {self.failed} failed"
        return text


def summarise(samples: Sequence[Sample]) -> Summary:
    answered = [s for s in samples if s.ok]
    cpu = [c for s in answered if (c := s.cpu_ms_per_request) is not None]
    return Summary(
        rps=median([s.rps for s in samples]) if samples else 0.0,
        p50_ms=median([percentile(s.latencies, 50) * 1000 for s in answered]) if answered else None,
        p99_ms=median([percentile(s.latencies, 99) * 1000 for s in answered]) if answered else None,
        cpu_ms=median(cpu) if cpu else None,
        failed=sum(s.failed for s in samples),
        rounds=len(samples),
    )
