"""The click commands. `socialguard` and `python -m socialguard` start here.

Import rule: may import core, files and audit; proxy only inside `run` and `ca`, so every other
command starts without loading mitmproxy.
"""

from socialguard.cli.app import main

__all__ = ["main"]
