"""Where the proxy may connect for a client: checked after name resolution, so a name that
resolves to 127.0.0.1 counts as 127.0.0.1.

Refused unless IT allows them (policy.yaml `destinations.allow`): loopback, link-local,
unspecified and multicast addresses and the gateway's own addresses; refused always: what
`destinations.deny` and the client's zone deny. A CONNECT goes only to `connect_ports`
(443), except to an address IT allows, where any port is IT's choice.

The answer given at CONNECT or request time (a 403, recorded) comes from a resolution kept a
few seconds; `server_connect` checks again before mitmproxy dials, and `server_connected`
checks the address it actually reached before a byte is sent, so a name that resolves
differently a moment later (DNS rebinding) cannot slip through. With `--upstream`, names are
resolved by the upstream proxy, not here: only addresses written as such are checked, and the
upstream itself is always let through (IT chose it).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import logging
import socket
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mitmproxy import ctx, http
from mitmproxy.proxy import mode_specs, server_hooks

from socialguard.core.destinations import IPAddress, parse_address, refused_because
from socialguard.core.policy import Decision, Reason, Who, refusal
from socialguard.proxy.answers import Answers

if TYPE_CHECKING:
    from socialguard.proxy.enforcer import Enforcer

logger = logging.getLogger("socialguard")

RESOLVED_SECONDS = 5.0
RESOLVED_SIZE = 4096
RESOLVE_TIMEOUT = 5.0
_SIOCGIFADDR = 0x8915
REFUSED_ERROR = "destination refused by the practice's policy"


def own_addresses() -> frozenset[IPAddress]:
    """The gateway's own addresses (every interface), so none is reached through the proxy."""
    found: set[IPAddress] = set()
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None):
            address = parse_address(str(info[4][0]))
            if address is not None:
                found.add(address)
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _index, name in socket.if_nameindex():
            with contextlib.suppress(OSError):
                packed = struct.pack("256s", name.encode()[:15])
                answer = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, packed)
                found.add(ipaddress.IPv4Address(answer[20:24]))
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            found.add(ipaddress.IPv6Address(int(raw, 16)))
    return frozenset(found)


class DestinationGuard:
    """The addon: CONNECT and plain-HTTP destinations answered early, every dial checked."""

    def __init__(self, enforcer: Enforcer, answers: Answers) -> None:
        self._enforcer = enforcer
        self._answers = answers
        self._own: frozenset[IPAddress] = frozenset()
        self._upstreams: set[tuple[str, int]] = set()
        self._resolved: dict[tuple[str, int], tuple[float, list[IPAddress]]] = {}

    def running(self) -> None:
        self._own = own_addresses()

    def configure(self, updated: set[str]) -> None:
        if "mode" in updated:
            self._upstreams = set()
            for spec in ctx.options.mode:
                mode = mode_specs.ProxyMode.parse(spec)
                if isinstance(mode, mode_specs.UpstreamMode):
                    self._upstreams.add(mode.address)

    # -- answered early: a 403 the client can read, and an event -------------------------
    async def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        if self._enforcer.intercepted(flow.client_conn) is not None:
            return  # blocked and intercepted for the page: it never connects anywhere
        try:
            await self._answer(flow, "connect", connect=True)
        except Exception:
            logger.exception("socialguard: destination check failed; refusing")
            flow.response = Answers.internal_error(flow.request)

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        if self._enforcer.intercepted(flow.client_conn) is not None:
            return
        if self._enforcer.connect_decision(flow.client_conn) is not None:
            return  # inside a tunnel: its CONNECT destination was checked
        try:
            await self._answer(flow, "http", connect=False)
        except Exception:
            logger.exception("socialguard: destination check failed; refusing")
            flow.response = Answers.internal_error(flow.request)

    async def _answer(self, flow: http.HTTPFlow, via: str, *, connect: bool) -> None:
        request = flow.request
        who = self._enforcer.who_for(flow.client_conn, flow.metadata)
        decision = await self.refusal(request.host, request.port, who, connect=connect)
        if decision is None:
            return
        policy = self._enforcer.policy()
        reference = self._answers.record(who, decision, policy, via=via)
        self._answers.counted(decision)
        flow.response = self._answers.refusal(
            decision, reference, request, html=not connect, zone=who.zone
        )

    async def refusal(
        self, host: str, port: int, who: Who, *, connect: bool, fresh: bool = False
    ) -> Decision | None:
        """Why the proxy may not connect to host:port for `who` (None: it may)."""
        settings = self._enforcer.policy().settings
        addresses = await self._addresses(host, port, fresh=fresh)
        allowed = settings.destinations.allow
        # Any port to an address IT allows: with --upstream, a name is resolved here for
        # this question only (the upstream resolves it for the connection).
        where = addresses or await self._addresses(host, port, fresh=fresh, locally=True)
        if (
            connect
            and port not in settings.connect_ports
            and not (where and all(any(a in n for n in allowed) for a in where))
        ):
            return refusal(
                Reason.PORT_NOT_ALLOWED,
                host,
                f"port {port} is not among connect_ports "
                f"({', '.join(map(str, sorted(settings.connect_ports)))})",
            )
        zone_deny = next((z.destinations_deny for z in settings.zones if z.name == who.zone), ())
        for address in addresses:
            reason = refused_because(address, settings.destinations, self._own, zone_deny)
            if reason is not None:
                return refusal(Reason.DESTINATION_REFUSED, host, reason)
        return None

    async def _addresses(
        self, host: str, port: int, *, fresh: bool, locally: bool = False
    ) -> list[IPAddress]:
        literal = parse_address(host)
        if literal is not None:
            return [literal]
        if self._upstreams and not locally:
            return []  # the upstream proxy resolves names, from where it stands
        key = (host.lower(), port)
        now = time.monotonic()
        known = self._resolved.get(key)
        if known is not None and known[0] > now and not fresh:
            return known[1]
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT
            )
        except (OSError, TimeoutError, UnicodeError):
            return []  # unresolvable: mitmproxy cannot connect either
        addresses = []
        for info in infos:
            address = parse_address(str(info[4][0]))
            if address is not None and address not in addresses:
                addresses.append(address)
        if len(self._resolved) >= RESOLVED_SIZE:
            self._resolved.clear()
        self._resolved[key] = (now + RESOLVED_SECONDS, addresses)
        return addresses

    # -- the final gate: the address about to be dialled, and the one connected to ----------
    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        server = data.server
        if server.error or server.address is None:
            return
        host, port = str(server.address[0]), int(server.address[1])
        if (host, port) in self._upstreams:
            return
        try:
            decision = await self.refusal(host, port, self._who(data), connect=False)
        except Exception:
            logger.exception("socialguard: destination check failed; not connecting")
            server.error = REFUSED_ERROR
            return
        if decision is not None:
            server.error = REFUSED_ERROR
            self._record_quietly(data, decision)

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        """The address actually connected to, checked before a byte is sent: a name that
        resolved to something else a moment after it was checked (DNS rebinding) ends here."""
        server = data.server
        if server.address is None or server.peername is None:
            return
        if (str(server.address[0]), int(server.address[1])) in self._upstreams:
            return
        try:
            settings = self._enforcer.policy().settings
            address = parse_address(str(server.peername[0]))
            who = self._who(data)
            zone_deny = next(
                (z.destinations_deny for z in settings.zones if z.name == who.zone), ()
            )
            reason = (
                refused_because(address, settings.destinations, self._own, zone_deny)
                if address is not None
                else None
            )
        except Exception:
            logger.exception("socialguard: checking a connected address failed; closing it")
            reason = "the address could not be checked"
        if reason is None:
            return
        self._record_quietly(
            data, refusal(Reason.DESTINATION_REFUSED, str(server.address[0]), reason)
        )
        proxy_server = ctx.master.addons.get("proxyserver")
        handler = proxy_server.connections.get(data.client.id) if proxy_server else None
        io = handler.transports.get(server) if handler is not None else None
        if io is not None and io.writer is not None:
            io.writer.close()

    def _who(self, data: server_hooks.ServerConnectionHookData) -> Who:
        return self._enforcer.who_for(data.client, None)

    def _record_quietly(
        self, data: server_hooks.ServerConnectionHookData, decision: Decision
    ) -> None:
        try:
            policy = self._enforcer.policy()
            self._answers.record(self._who(data), decision, policy, via="server-connect")
            self._answers.counted(decision)
        except Exception:
            logger.exception("socialguard: recording a refused destination failed")
