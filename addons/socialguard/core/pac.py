"""The proxy auto-config (PAC) file that points browsers at the gateway: pure text.

Sent DIRECT: the LAN (plain host names, `localhost`, private and link-local IPv4 literals), the
practice's own domains and, only where IT says so, the catalogue's never-block clinical systems.
Everything else goes to the proxy with no DIRECT fallback: when the proxy is down, browsing
stops rather than slipping past the policy (the firewall should drop direct egress anyway).
Names are never resolved (no isInNet on a host name): a PAC file that looks up every host
slows every page and leaks every name to DNS.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

# Private (RFC 1918), loopback and link-local IPv4, as (network, mask).
LAN_NETWORKS = (
    ("10.0.0.0", "255.0.0.0"),
    ("172.16.0.0", "255.240.0.0"),
    ("192.168.0.0", "255.255.0.0"),
    ("127.0.0.0", "255.0.0.0"),
    ("169.254.0.0", "255.255.0.0"),
)


def _domains(names: Iterable[str]) -> list[str]:
    """Lower-cased, without a leading `*.` or dot, de-duplicated in order."""
    seen: dict[str, None] = {}
    for name in names:
        clean = name.strip().lower().removeprefix("*.").strip(".")
        if clean:
            seen.setdefault(clean, None)
    return list(seen)


def pac_text(
    proxy: str,
    own_domains: Iterable[str],
    never_block: Iterable[str] = (),
    *,
    header: str = "",
) -> str:
    """The PAC file: `proxy` is HOST:PORT; `never_block` is empty unless IT asked for it."""
    own = _domains(own_domains)
    clinical = [d for d in _domains(never_block) if d not in own]
    direct = own + clinical
    lan = " ||\n      ".join(
        f"isInNet(host, {json.dumps(n)}, {json.dumps(m)})" for n, m in LAN_NETWORKS
    )
    comments = "".join(f"// {line}\n" for line in header.splitlines())
    counts = f"the practice's own domains ({len(own)}), clinical systems ({len(clinical)})"
    return f"""{comments}// Direct: the LAN, {counts}.
// Everything else: the socialguard proxy, with no DIRECT fallback (fail closed).
var DIRECT_DOMAINS = {json.dumps(direct, indent=2)};

function FindProxyForURL(url, host) {{
  host = host.toLowerCase();
  if (host.charAt(host.length - 1) == ".") host = host.substring(0, host.length - 1);
  if (isPlainHostName(host) || host == "localhost" || dnsDomainIs(host, ".local")) {{
    return "DIRECT";
  }}
  for (var i = 0; i < DIRECT_DOMAINS.length; i++) {{
    var domain = DIRECT_DOMAINS[i];
    if (host == domain || dnsDomainIs(host, "." + domain)) return "DIRECT";
  }}
  if (/^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$/.test(host) &&
      ({lan})) {{
    return "DIRECT";
  }}
  return {json.dumps("PROXY " + proxy)};
}}
"""
