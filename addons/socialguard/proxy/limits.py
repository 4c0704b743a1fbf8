"""Bounds on what one client can hold: a request head (or a tunnel's first bytes) must be
complete within `limits.header_timeout_seconds`, one address may hold at most
`limits.connections_per_client` connections, and every long-lived connection an exemption or a
rest break let through (a tunnel, a WebSocket) is decided again each second and closed once
that no longer holds, whether or not data flows.

Clients on carrier-grade NAT addresses (100.64.0.0/10) are not the practice's own devices
unless IT says so: mitmproxy lets them in (they are not "global"), socialguard refuses them
unless a zone's subnets list them (a practice VPN that uses that range, for example).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mitmproxy import connection, ctx, http

from socialguard.core.policy import normalise_ip

if TYPE_CHECKING:
    from socialguard.proxy.enforcer import Enforcer

logger = logging.getLogger("socialguard")

SWEEP_SECONDS = 0.5
RECHECK_SECONDS = 1.0
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
RECHECK_NAMES = "socialguard.recheck"  # flow.metadata key: names an exemption let through


class Limits:
    """The addon: per-client deadlines and counts, and the connections held under exemptions."""

    def __init__(self, enforcer: Enforcer) -> None:
        self._enforcer = enforcer
        self._deadlines: dict[str, float] = {}
        self._in_flight: Counter[str] = Counter()
        self._upgraded: set[str] = set()
        self._per_address: Counter[str] = Counter()
        self._address_of: dict[str, str] = {}
        self._held: dict[str, Callable[[], bool]] = {}
        self._next_recheck = 0.0
        self._task: asyncio.Task[None] | None = None

    # -- the sweeper ---------------------------------------------------------------------
    def running(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sweep())

    async def done(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                self.sweep(time.monotonic())
            except Exception:
                logger.exception("socialguard: the connection sweeper failed; retrying")

    def sweep(self, now: float) -> None:
        """Close what is past its deadline, and what an exemption no longer covers."""
        for client_id, deadline in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[client_id]
                self._close(client_id, "request head not complete in time")
        if now >= self._next_recheck:
            self._next_recheck = now + RECHECK_SECONDS
            for client_id, still_allowed in list(self._held.items()):
                if not still_allowed():
                    self._held.pop(client_id, None)
                    self._close(client_id, "no longer allowed")

    def _close(self, client_id: str, why: str) -> None:
        server = ctx.master.addons.get("proxyserver")
        handler = server.connections.get(client_id) if server is not None else None
        if handler is None:
            return
        io = handler.transports.get(handler.client)
        if io is not None and io.handler is not None:
            logger.info("socialguard: closing a client connection: %s", why)
            io.handler.cancel(f"socialguard: {why}")

    # -- deadlines -----------------------------------------------------------------------
    def _arm(self, client_id: str) -> None:
        if client_id in self._upgraded or self._in_flight[client_id] > 0:
            return
        timeout = self._enforcer.policy().settings.header_timeout_seconds
        self._deadlines[client_id] = time.monotonic() + timeout

    def settled(self, client: connection.Client) -> None:
        """The connection became a decided tunnel (or is being closed): no deadline."""
        self._deadlines.pop(client.id, None)
        self._upgraded.add(client.id)

    def hold(self, client: connection.Client, still_allowed: Callable[[], bool]) -> None:
        """Decide this connection again each second; close it once refused."""
        self._held[client.id] = still_allowed

    def client_connected(self, client: connection.Client) -> None:
        settings = self._enforcer.policy().settings
        address = normalise_ip(client.peername[0])
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            ip = None
        zoned = ip is not None and any(ip in n for z in settings.zones for n in z.networks)
        if ip is not None and ip in CARRIER_GRADE_NAT and not zoned:
            logger.warning(
                "socialguard: refused a client on carrier-grade NAT %s: list its subnet "
                "in a zone to serve it",
                address,
            )
            client.error = "client address not served"
            return
        if self._per_address[address] >= settings.connections_per_client:
            logger.warning(
                "socialguard: %s holds %d connections (limits.connections_per_client); "
                "refused another",
                address,
                settings.connections_per_client,
            )
            client.error = "too many connections from this address"
            return
        self._per_address[address] += 1
        self._address_of[client.id] = address
        self._arm(client.id)

    def client_disconnected(self, client: connection.Client) -> None:
        self._deadlines.pop(client.id, None)
        self._in_flight.pop(client.id, None)
        self._upgraded.discard(client.id)
        self._held.pop(client.id, None)
        address = self._address_of.pop(client.id, None)
        if address is not None:
            self._per_address[address] -= 1
            if self._per_address[address] <= 0:
                del self._per_address[address]

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        client_id = flow.client_conn.id
        self._deadlines.pop(client_id, None)
        self._in_flight[client_id] += 1

    def http_connect(self, flow: http.HTTPFlow) -> None:
        # The CONNECT is answered; the tunnel's first bytes must now come in time too.
        self._deadlines.pop(flow.client_conn.id, None)
        self._in_flight.pop(flow.client_conn.id, None)
        self._arm(flow.client_conn.id)

    def response(self, flow: http.HTTPFlow) -> None:
        self._finished(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finished(flow)

    def _finished(self, flow: http.HTTPFlow) -> None:
        client_id = flow.client_conn.id
        if self._in_flight[client_id] > 0:
            self._in_flight[client_id] -= 1
        if flow.request.method != "CONNECT":
            self._arm(client_id)  # waiting for the next request head on this connection

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        self.settled(flow.client_conn)
        names: Any = flow.metadata.get(RECHECK_NAMES)
        if names:
            self.hold(flow.client_conn, self._enforcer.still_allowed(flow.client_conn, names))
