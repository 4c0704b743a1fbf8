"""The YAML files on disk: reading them with line numbers and editing them keeping comments.

Import rule: may import core; never audit, proxy, cli or mitmproxy.
"""
