"""What the fast hook tests share: an enforcer on the small test policy, writing a real audit
log, and mitmproxy's own test flows and layers (no proxy, no network)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from mitmproxy import connection
from mitmproxy.proxy import events, layer
from mitmproxy.proxy.context import Context
from mitmproxy.test import taddons, tflow, tutils

from socialguard.audit.log import AuditLog
from socialguard.core.policy import Policy
from socialguard.proxy.enforcer import Enforcer
from tests.conftest import NOW, make_policy


class Fixture:
    """An enforcer, its audit file and the policy it reads (replaceable, as a reload does)."""

    def __init__(self, tmp: Path, settings: str | None = None, *, page_mode: bool = False):
        self.policy: Policy = make_policy() if settings is None else make_policy(settings)
        self.audit_path = tmp / "audit.jsonl"
        self.enforcer = Enforcer(
            lambda: self.policy, AuditLog(self.audit_path), clock=lambda: NOW, page_mode=page_mode
        )

    def events(self) -> list[dict[str, Any]]:
        if not self.audit_path.exists():
            return []
        return [json.loads(line) for line in self.audit_path.read_text().splitlines() if line]


def client(ip: str = "10.10.0.5", sni: str | None = None) -> connection.Client:
    conn = tflow.tclient_conn()
    conn.peername = (ip, 50000)
    conn.sni = sni
    return conn


def http_flow(url: str, *, ip: str = "10.10.0.5", user: str | None = None) -> Any:
    """A plain-HTTP request flow from `ip`, signed in as `user` if given."""
    flow = tflow.tflow()
    flow.client_conn = client(ip)
    flow.request = tutils.treq()
    flow.request.url = url
    if user:
        flow.metadata["proxyauth"] = (user, "secret")
    return flow


def connect_flow(host: str, port: int = 443, *, ip: str = "10.10.0.5") -> Any:
    flow = http_flow(f"http://{host}:{port}/", ip=ip)
    flow.request.method = "CONNECT"
    flow.request.authority = f"{host}:{port}"
    return flow


def next_layer(
    ctx: taddons.context, conn: connection.Client, address: str, data: bytes, port: int = 443
) -> layer.NextLayer:
    """A NextLayer for a tunnel to `address` whose client has sent `data` so far."""
    context = Context(conn, ctx.options)
    context.server = connection.Server(address=(address, port))
    nextlayer = layer.NextLayer(context)
    nextlayer.events = [events.DataReceived(conn, data)] if data else []
    return nextlayer


def client_hello(names: list[bytes] | None = None) -> bytes:
    """A real ClientHello record from Python's TLS, its server_name list replaced by `names`
    (None keeps one ordinary name, `placeholder.example`)."""
    import ssl  # noqa: PLC0415 - only the helpers that build hellos need it

    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = tls.wrap_bio(incoming, outgoing, server_hostname="placeholder.example")
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    record = outgoing.read()
    if names is None:
        return record
    body = record[9:]
    p = 2 + 32
    p += 1 + body[p]
    p += 2 + int.from_bytes(body[p : p + 2], "big")
    p += 1 + body[p]
    total = int.from_bytes(body[p : p + 2], "big")
    extensions = body[p + 2 : p + 2 + total]
    entries = b"".join(b"\x00" + len(n).to_bytes(2, "big") + n for n in names)
    server_names = len(entries).to_bytes(2, "big") + entries
    out = b""
    q = 0
    while q < len(extensions):
        kind = extensions[q : q + 2]
        length = int.from_bytes(extensions[q + 2 : q + 4], "big")
        if kind == b"\x00\x00":
            out += kind + len(server_names).to_bytes(2, "big") + server_names
        else:
            out += extensions[q : q + 4 + length]
        q += 4 + length
    body = body[:p] + len(out).to_bytes(2, "big") + out
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake
