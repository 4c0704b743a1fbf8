"""The pure core that decides: hosts, catalogue, settings, authorisations, decide().

Import rule: no I/O, no clock, no mitmproxy, structlog, prometheus_client or yaml, and nothing
from the other wings (files, audit, proxy, cli, web). Everything it needs is passed in.
"""
