"""Loopback-only servers for the proxy tests: TLS and plain origins, and a loopback
"internet" (an HTTP proxy that answers every plain-HTTP request itself and relays CONNECT only
to loopback). Nothing here resolves or connects to any address outside 127.0.0.0/8.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import ipaddress
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"
ORIGIN_BODY = b"hello from the origin"
INTERNET_BODY = b"origin ok"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def terminate(process: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """Stop a server the test started: SIGTERM and its orderly shutdown, else SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def wait_for_port(port: int, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, and its key: the origin's own identity."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "origin.pem", directory / "origin.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _OriginHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(ORIGIN_BODY)))
        self.end_headers()
        self.wfile.write(ORIGIN_BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def tls_origin(directory: Path) -> Iterator[tuple[int, Path]]:
    """An HTTPS origin on loopback with its own self-signed certificate: (port, cert)."""
    cert, key = self_signed(directory)
    server = _Server((LOOPBACK, 0), _OriginHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server):
        yield server.server_address[1], cert


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _InternetHandler(http.server.BaseHTTPRequestHandler):
    """Answers plain HTTP itself; relays CONNECT to loopback targets only."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(INTERNET_BODY)))
        self.end_headers()
        self.wfile.write(INTERNET_BODY)

    do_GET = do_POST = do_PUT = _answer

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        if not _is_loopback(host):
            self.send_error(502, "the loopback internet only reaches loopback")
            return
        upstream = socket.create_connection((LOOPBACK, int(port)), timeout=10)
        self.send_response(200)
        self.end_headers()

        def pipe(a: socket.socket, b: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := a.recv(65536):
                    b.sendall(data)
            with contextlib.suppress(OSError):
                b.shutdown(socket.SHUT_WR)

        other = threading.Thread(target=pipe, args=(upstream, self.connection), daemon=True)
        other.start()
        pipe(self.connection, upstream)
        other.join(10)
        upstream.close()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def loopback_internet() -> Iterator[tuple[int, list[str]]]:
    """(port, requests seen) of an upstream proxy that keeps every byte on loopback."""
    server = _Server((LOOPBACK, 0), _InternetHandler)
    server.seen = []  # type: ignore[attr-defined]
    with serving(server):
        yield server.server_address[1], server.seen  # type: ignore[attr-defined]
