"""The running gateway: the only wing that imports mitmproxy (and prometheus_client).

Import rule: may import core, files and audit; never cli.
"""
