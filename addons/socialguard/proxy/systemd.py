"""Tell systemd how the service is doing (`Type=notify`): READY, RELOADING, STOPPING.

The sd_notify protocol is one datagram to the Unix socket named by $NOTIFY_SOCKET (a name
starting with '@' is in the abstract namespace); a dozen lines, so no dependency. Outside
systemd (no $NOTIFY_SOCKET) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time

logger = logging.getLogger("socialguard")


def notify(*states: str) -> bool:
    """Send `states` (e.g. "READY=1") to systemd; True when sent, False outside systemd.

    Never raises: a service must not stop because its supervisor could not be told.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or not states:
        return False
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(target)
            sock.sendall("\n".join(states).encode())
    except OSError as error:
        logger.warning("socialguard: could not notify systemd at %s: %s", address, error)
        return False
    return True


def ready(status: str = "") -> bool:
    return notify("READY=1", *([f"STATUS={status}"] if status else []))


def reloading() -> bool:
    """RELOADING=1 with the monotonic time, as `Type=notify-reload` expects (and notify accepts)."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify("RELOADING=1", f"MONOTONIC_USEC={usec}")


def stopping() -> bool:
    return notify("STOPPING=1")
