"""The audit log: line format and event names, writer, rotation, verify, search and report.

Import rule: may import core; never files, proxy, cli or mitmproxy. Only audit.log imports
structlog.
"""
