"""The gate holds against a hostile client, through the real proxy on loopback: tunnels carry
a decided TLS ClientHello or nothing, the gateway's own services and refused networks are out
of reach, half-sent requests and floods are bounded, repeated blocks are counted, and an open
WebSocket ends with its exemption."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import LOOPBACK, free_port, wait_for_port
from tests.proxy.conftest import PASSWORD, RunningProxy, stop
from tests.proxy.hooks import client_hello

TODAY = dt.datetime.now(dt.UTC).date()
NO_LOOPBACK = "destinations: {allow: []}\n"  # the default: loopback refused


# -- loopback servers ---------------------------------------------------------------------
def _serve(handle: Any, host: str = LOOPBACK) -> Iterator[int]:
    """A threaded TCP server on `host` calling `handle(conn)` per connection; yields its port."""
    listener = socket.create_server((host, 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(5)
    listener.close()


def _speak_first(conn: socket.socket) -> None:
    """Like SSH: a banner before the client says anything, then an echo."""
    try:
        conn.sendall(b"SSH-2.0-OpenSSH_9.6 banner\r\n")
        while data := conn.recv(4096):
            conn.sendall(b"ECHO:" + data)
    except OSError:
        pass
    finally:
        conn.close()


@pytest.fixture
def banner_server() -> Iterator[int]:
    yield from _serve(_speak_first)


def _http_ok(conn: socket.socket) -> None:
    """Reads one request (whatever its body's size, never keeping it) and answers 200."""
    try:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(65536)
            if not chunk:
                return
            head += chunk
        header, _, rest = head.partition(b"\r\n\r\n")
        length = 0
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        left = length - len(rest)
        while left > 0:
            chunk = conn.recv(1 << 20)
            if not chunk:
                return
            left -= len(chunk)
        body = f"received {length}".encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    except OSError:
        pass
    finally:
        conn.close()


@pytest.fixture
def sink() -> Iterator[int]:
    yield from _serve(_http_ok)


# -- clients ------------------------------------------------------------------------------
def connect(
    proxy: RunningProxy, target: str, user: str | None = None
) -> tuple[socket.socket, bytes]:
    """A CONNECT through the proxy: the socket and the status line it answered with."""
    raw = socket.create_connection((LOOPBACK, proxy.port), timeout=5)
    auth = ""
    if user:
        token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        auth = f"Proxy-Authorization: Basic {token}\r\n"
    raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = raw.recv(4096)
        if not chunk:
            break
        head += chunk
    return raw, head.split(b"\r\n", 1)[0]


def read_all(raw: socket.socket, seconds: float) -> bytes:
    """Everything the proxy relays within `seconds`, or until it closes."""
    raw.settimeout(seconds)
    got = b""
    try:
        while chunk := raw.recv(4096):
            got += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return got


def closed_within(raw: socket.socket, seconds: float) -> bool:
    """Whether the proxy closes the connection within `seconds` (relaying nothing before)."""
    raw.settimeout(seconds)
    try:
        return raw.recv(4096) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def blocked(proxy: RunningProxy, wait_for: int = 1) -> list[dict[str, Any]]:
    return [e for e in proxy.events(wait_for=wait_for) if e["event"] == "access.blocked"]


def refusals_after_stop(proxy: RunningProxy) -> dict[str, int]:
    """Blocks by reason once the proxy has stopped (so every burst is written), each event
    counting as its `count` of blocks (an event without one counts once)."""
    stop(proxy)
    counted: dict[str, int] = {}
    for event in blocked(proxy, wait_for=0):
        counted[event["reason"]] = counted.get(event["reason"], 0) + event.get("count", 1)
    return counted


# -- tunnels carry TLS to allowed ports, or nothing -----------------------------------------
def test_connect_to_a_port_not_listed_is_refused_and_recorded(run_proxy: Any) -> None:
    proxy = run_proxy()
    raw, status = connect(proxy, "192.0.2.10:2222")
    raw.close()
    assert b" 403" in status
    (event,) = blocked(proxy)
    assert (event["reason"], event["host"]) == ("port_not_allowed", "192.0.2.10")


def test_a_server_that_speaks_first_is_not_heard_and_ssh_bytes_are_refused(
    run_proxy: Any, banner_server: int
) -> None:
    """On an allowed tunnel: no banner reaches the client, the client's SSH greeting reaches
    no server, and the refusal is recorded."""
    proxy = run_proxy()
    raw, status = connect(proxy, f"{LOOPBACK}:{banner_server}")
    assert b" 200" in status
    assert read_all(raw, 1.5) == b""  # the banner is held back
    raw.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
    assert closed_within(raw, 3)  # closed: no banner, no echo
    raw.close()
    (event,) = blocked(proxy)
    assert event["reason"] == "not_tls"


def test_raw_bytes_on_port_443_are_refused(run_proxy: Any, banner_server: int) -> None:
    """An allowed tunnel (loopback stands in for 443 here) carries TLS or nothing."""
    proxy = run_proxy()
    raw, status = connect(proxy, f"localhost:{banner_server}")
    assert b" 200" in status
    raw.sendall(b"\x00\x01 not TLS, not SSH, not anything\r\n")
    assert closed_within(raw, 3)
    raw.close()
    assert [e["reason"] for e in blocked(proxy)] == ["not_tls"]


@pytest.mark.parametrize(
    "names",
    [
        [b"www.facebook.com!"],
        [b"a" * 64 + b".facebook.com"],
        [b"news.example.com", b"www.facebook.com"],
    ],
    ids=["bad-character", "long-label", "two-names"],
)
def test_odd_server_names_are_refused_never_allowed(
    run_proxy: Any, origin: tuple[int, Path], names: list[bytes]
) -> None:
    proxy = run_proxy()
    raw, status = connect(proxy, f"{LOOPBACK}:{origin[0]}")
    assert b" 200" in status
    raw.sendall(client_hello(names))
    answer = read_all(raw, 3)
    raw.close()
    assert not answer.startswith(b"\x16\x03")  # no ServerHello: the origin never saw it
    assert answer.startswith(b"\x15")  # a TLS alert: access denied
    (event,) = blocked(proxy)
    assert event["reason"] == "malformed_host"


def test_an_endless_client_hello_is_refused(run_proxy: Any, origin: tuple[int, Path]) -> None:
    """A record claiming 16 MiB is refused at once; one trickled past 64 KiB is refused too."""
    proxy = run_proxy()
    raw, _ = connect(proxy, f"{LOOPBACK}:{origin[0]}")
    raw.sendall(b"\x16\x03\x01\x40\x00" + b"\x01\xff\xff\xff" + b"\x00" * 1000)
    assert read_all(raw, 3).startswith(b"\x15")
    raw.close()
    raw, _ = connect(proxy, f"{LOOPBACK}:{origin[0]}")
    # A hello claiming 60,000 bytes, sent 10 bytes to a record: 64 KiB of records pass before
    # it could be complete, and each would otherwise be parsed again from the start.
    body = b"\x01" + (60_000).to_bytes(3, "big") + client_hello()[9:]
    body += b"\x00" * (60_004 - len(body))
    try:
        for start in range(0, len(body), 10):
            part = body[start : start + 10]
            raw.sendall(b"\x16\x03\x01" + len(part).to_bytes(2, "big") + part)
    except OSError:
        pass  # refused part-way: what the test expects
    answer = read_all(raw, 3)
    raw.close()
    assert answer.startswith(b"\x15")
    assert refusals_after_stop(proxy) == {"malformed_host": 2}


# -- the gateway's own services and the rest of the LAN -------------------------------------
def test_the_metrics_port_and_loopback_names_are_out_of_reach(
    run_proxy: Any, tmp_path: Path
) -> None:
    metrics_port = free_port()
    config = tmp_path / "policy.yaml"
    config.write_text(f'metrics:\n  listen: "{LOOPBACK}:{metrics_port}"\n{NO_LOOPBACK}')
    proxy = run_proxy("--config", str(config))
    assert wait_for_port(metrics_port, 10)
    for url in (
        f"http://{LOOPBACK}:{metrics_port}/metrics",
        f"http://localhost:{metrics_port}/metrics",
    ):
        answer = proxy.curl("-i", url)
        assert "HTTP/1.1 403" in answer.stdout, answer.stdout
        assert "socialguard_" not in answer.stdout
    for target in (f"{LOOPBACK}:{metrics_port}", "localhost:443", "[::1]:443"):
        raw, status = connect(proxy, target)
        raw.close()
        assert b" 403" in status, (target, status)
    assert refusals_after_stop(proxy) == {"destination_refused": 4, "port_not_allowed": 1}


def test_a_zone_may_not_reach_a_network_it_is_denied(run_proxy: Any, tmp_path: Path) -> None:
    """The test's 'private subnet' is 127.0.0.2; the client's zone is 127.0.0.1's."""
    servers = [_serve(_http_ok, host) for host in (LOOPBACK, "127.0.0.2")]
    allowed_port, denied_port = (next(s) for s in servers)
    config = tmp_path / "policy.yaml"
    config.write_text(
        "zones:\n  - name: byod\n    subnets: [127.0.0.1/32]\n"
        "    destinations: {deny: [127.0.0.2/32]}\n"
        'destinations: {allow: ["127.0.0.0/8", "::1/128"]}\n'
    )
    proxy = run_proxy("--config", str(config))
    assert proxy.curl(f"http://{LOOPBACK}:{allowed_port}/").stdout == "received 0"
    answer = proxy.curl("-i", f"http://127.0.0.2:{denied_port}/")
    assert "HTTP/1.1 403" in answer.stdout
    raw, status = connect(proxy, f"127.0.0.2:{denied_port}")
    raw.close()
    assert b" 403" in status
    assert {e["zone"] for e in blocked(proxy)} == {"byod"}
    assert refusals_after_stop(proxy) == {"destination_refused": 2}
    for server in servers:
        next(server, None)


# -- memory and time ------------------------------------------------------------------------
def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_300_mib_upload_streams_through(run_proxy: Any, sink: int) -> None:
    proxy = run_proxy()
    before = peak_rss_kib(proxy.process.pid)
    size = 300 << 20
    raw = socket.create_connection((LOOPBACK, proxy.port), timeout=30)
    raw.sendall(
        f"POST http://{LOOPBACK}:{sink}/upload HTTP/1.1\r\nHost: {LOOPBACK}:{sink}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n".encode()
    )
    chunk = b"\x00" * (1 << 20)
    for _ in range(size >> 20):
        raw.sendall(chunk)
    answer = read_all(raw, 30)
    raw.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert answer.endswith(f"received {size}".encode())
    peak = peak_rss_kib(proxy.process.pid)
    # Held whole, the body alone would be 300 MiB (twice that was seen); streamed, the proxy's
    # peak stays near where it started.
    assert peak < before + 64 * 1024, (before, peak)
    assert peak < 200 * 1024, peak


def test_a_half_sent_request_is_closed_after_the_bound(run_proxy: Any, tmp_path: Path) -> None:
    config = tmp_path / "policy.yaml"
    config.write_text("limits: {header_timeout_seconds: 1}\n")
    proxy = run_proxy("--config", str(config))
    raw = socket.create_connection((LOOPBACK, proxy.port), timeout=10)
    started = time.monotonic()
    raw.sendall(b"GET http://news.example.com/ HTTP/1.1\r\nHost: news.example.com\r\n")
    closed = False
    try:
        for _ in range(25):  # a byte every 0.2 s: activity, but never a whole head
            raw.sendall(b"X")
            if closed_within(raw, 0.2):
                closed = True
                break
    except OSError:
        closed = True
    raw.close()
    assert closed
    assert time.monotonic() - started < 3


def blocked_once(raw: socket.socket) -> bytes:
    """One blocked request on a kept-alive connection; the status line of its answer."""
    raw.sendall(b"GET http://www.facebook.com/ HTTP/1.1\r\nHost: www.facebook.com\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = raw.recv(4096)
        if not chunk:
            break
        head += chunk
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    body = head.split(b"\r\n\r\n", 1)[1]
    while len(body) < length:
        body += raw.recv(4096)
    return head.split(b"\r\n", 1)[0]


def test_connections_per_client_are_bounded(run_proxy: Any, tmp_path: Path) -> None:
    config = tmp_path / "policy.yaml"
    config.write_text("limits: {connections_per_client: 3}\n")
    proxy = run_proxy("--config", str(config))
    with contextlib.ExitStack() as held:
        for _ in range(3):  # each served (so counted) before the next is opened
            raw = held.enter_context(socket.create_connection((LOOPBACK, proxy.port), timeout=5))
            assert b" 403" in blocked_once(raw)
        extra = held.enter_context(socket.create_connection((LOOPBACK, proxy.port), timeout=5))
        assert closed_within(extra, 3)
    time.sleep(0.5)  # the three are closed: room again
    with socket.create_connection((LOOPBACK, proxy.port), timeout=5) as again:
        assert b" 403" in blocked_once(again)


def test_a_burst_of_identical_blocks_is_one_counted_event(run_proxy: Any) -> None:
    proxy = run_proxy()
    with socket.create_connection((LOOPBACK, proxy.port), timeout=10) as raw:
        statuses = [blocked_once(raw).split(b" ")[1] for _ in range(40)]
    assert statuses == [b"403"] * 40  # every block enforced
    time.sleep(11)  # the 10-second window closes
    events = blocked(proxy, wait_for=2)
    assert len(events) == 2
    first, repeats = events
    assert "count" not in first
    assert (repeats["count"], repeats["window_seconds"], repeats["repeat_of"]) == (
        39,
        10.0,
        first["id"],
    )


# -- a WebSocket opened under an exemption ends with it ------------------------------------
def _ws_frame(payload: bytes, *, masked: bool) -> bytes:
    head = bytes([0x81, (0x80 if masked else 0) | len(payload)])
    if not masked:
        return head + payload
    mask = b"\x01\x02\x03\x04"
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _ws_upstream(conn: socket.socket) -> None:
    """An upstream proxy that accepts a WebSocket upgrade and echoes text frames."""
    try:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()  # noqa: S324
        )
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        while True:
            header = conn.recv(2)
            if len(header) < 2:
                return
            length = header[1] & 0x7F
            mask = conn.recv(4)
            payload = conn.recv(length)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            conn.sendall(_ws_frame(data, masked=False))
    except OSError:
        pass
    finally:
        conn.close()


def test_a_revoked_exemption_closes_an_open_websocket(
    run_proxy: Any, tmp_path: Path, htpasswd: Path
) -> None:
    server = _serve(_ws_upstream)
    upstream = next(server)
    listed = tmp_path / "authorisations.yaml"
    entry = (
        "approvers: [practice.manager]\nexemptions:\n"
        "  - id: EX-2026-020\n    who: {user: k.jones}\n    services: [facebook]\n"
        "    purpose: Answer patients on the practice page\n"
        "    approved_by: practice.manager\n"
        f"    approved_on: {TODAY - dt.timedelta(days=1)}\n"
        f"    expires: {TODAY + dt.timedelta(days=30)}\n"
    )
    listed.write_text(entry)
    proxy = run_proxy(
        "--authorisations", str(listed), "--proxyauth", f"@{htpasswd}",
        "--upstream", f"http://{LOOPBACK}:{upstream}",
    )  # fmt: skip
    token = base64.b64encode(f"k.jones:{PASSWORD}".encode()).decode()
    raw = socket.create_connection((LOOPBACK, proxy.port), timeout=10)
    raw.sendall(
        b"GET http://www.facebook.com/chat HTTP/1.1\r\nHost: www.facebook.com\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Proxy-Authorization: Basic " + token.encode() + b"\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    raw.sendall(_ws_frame(b"before", masked=True))
    assert raw.recv(4096) == _ws_frame(b"before", masked=False)
    listed.write_text(
        entry + f"    revoked: {{'on': {TODAY}, by: practice.manager, reason: role changed}}\n"
    )
    closed_within = None
    started = time.monotonic()
    raw.settimeout(0.5)
    while time.monotonic() - started < 8:
        try:
            data = raw.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            data = b""
        if not data:
            closed_within = time.monotonic() - started
            break
    raw.close()
    assert closed_within is not None, "the WebSocket stayed open after the revocation"
    events = [e for e in proxy.events(wait_for=2) if e["event"].startswith("access.")]
    assert [(e["event"], e["reason"]) for e in events] == [
        ("access.exception", "exemption"),
        ("access.blocked", "exemption_revoked"),
    ]
    next(server, None)
