"""The policy in force, swapped whole and atomically; a rejected file never replaces it.

`PolicyWatcher` follows the policy files while the proxy runs: it notices a change by each
file's (mtime, size, inode) — an atomic rename changes the inode even within one mtime tick —
loads and validates everything again, and either puts the new policy in force and records it
(`policy.loaded`, then one `exemption.*` event per change to the list) or records
`policy.rejected` with every problem and keeps the last good policy. No mitmproxy here: the
runner starts `watch()` beside the proxy.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from socialguard.exemption_changes import exemption_changes
from socialguard.policy import Policy
from socialguard.policy_files import PolicyPaths, load_policy
from socialguard.settings import DEFAULT_AUTHORISATIONS_PATH, DEFAULT_POLICY_PATH
from socialguard.yamlfile import ConfigError

logger = logging.getLogger("socialguard")

# Polled twice a second; a change is taken once it has held still for one poll (so a file
# caught half-written by an editor is not rejected), i.e. within about a second.
POLL_SECONDS = 0.5

Stamp = tuple[int, int, int] | None


class Recorder(Protocol):
    """Where events go: the AuditLog in the proxy, a list in tests."""

    def record(self, event: str, fields: dict[str, Any]) -> Any: ...


class PolicyHolder:
    """Holds the last good policy. Calling it returns the policy in force right now."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    def __call__(self) -> Policy:
        return self._policy

    def replace(self, policy: Policy) -> Policy:
        """Put a fully validated policy in force; returns the one it replaced."""
        old, self._policy = self._policy, policy
        return old


def file_stamp(path: Path) -> Stamp:
    """What changes when a file is edited in place or replaced; None while it is absent."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class PolicyWatcher:
    """Reloads the policy when its files change; never lets a bad file replace a good policy."""

    def __init__(
        self,
        paths: PolicyPaths,
        holder: PolicyHolder,
        audit: Recorder,
        *,
        load: Callable[[PolicyPaths], Policy] = load_policy,
        interval: float = POLL_SECONDS,
        on_result: Callable[[bool], None] | None = None,
    ) -> None:
        self._paths = paths
        self._holder = holder
        self._audit = audit
        self._load = load
        self.interval = interval
        self._on_result = on_result  # e.g. the reloads metric: True taken, False rejected
        # None until the first poll: a change made between start-up and the first poll counts.
        self._seen: tuple[Stamp, ...] | None = None
        self._pending: tuple[Stamp, ...] | None = None
        self._rejected = False

    def files(self) -> list[Path]:
        """The files a policy is made of, including default paths that do not exist yet."""
        config = self._paths.config or DEFAULT_POLICY_PATH
        authorisations = self._paths.authorisations or DEFAULT_AUTHORISATIONS_PATH
        return [config, authorisations, *self._holder().settings.catalogs]

    def stamps(self) -> tuple[Stamp, ...]:
        return tuple(file_stamp(path) for path in self.files())

    def poll(self) -> str | None:
        """Look once; returns 'loaded', 'rejected' or None (nothing new to take)."""
        stamps = self.stamps()
        if stamps == self._seen:
            self._pending = None
            return None
        if stamps != self._pending:
            self._pending = stamps  # changed since the last look: let the writer finish
            return None
        self._seen, self._pending = stamps, None
        return self.reload()

    def reload(self) -> str | None:
        """Load and validate everything; take it whole, or record why not and keep the old."""
        try:
            policy = self._load(self._paths)
        except ConfigError as error:
            self._reject(
                [{"file": p.source, "line": p.line, "problem": p.message} for p in error.problems]
            )
            return "rejected"
        except Exception as error:  # a bug must not stop the watcher or open the gate
            logger.exception("socialguard: reloading the policy failed")
            self._reject([{"file": None, "line": None, "problem": f"internal error: {error!r}"}])
            return "rejected"
        old = self._holder()
        if policy.digest == old.digest and not self._rejected:
            return None  # touched, not changed
        # In force first, recorded second: a revocation must not wait on a slow or full disk.
        self._holder.replace(policy)
        self._rejected = False
        self._audit.record(
            "policy.loaded",
            {
                "policy_digest": policy.digest,
                "previous_digest": old.digest,
                "trigger": "reload",
                "files": [str(p) for p in self._paths.watched()],
                "exemptions": len(policy.authorisations.exemptions),
                "services": len(policy.catalog.services),
                "warnings": list(policy.authorisations.warnings),
            },
        )
        for change in exemption_changes(old.authorisations, policy.authorisations):
            self._audit.record(change.event, {**change.fields, "policy_digest": policy.digest})
        if self._on_result is not None:
            self._on_result(True)
        return "loaded"

    def _reject(self, errors: list[dict[str, Any]]) -> None:
        self._rejected = True
        if self._on_result is not None:
            self._on_result(False)
        first = errors[0] if errors else {"file": None, "line": None, "problem": "unknown"}
        where = f"{first['file']}:{first['line']}: " if first["file"] else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        self._audit.record(
            "policy.rejected",
            {
                "policy_digest": self._holder().digest,  # the policy that stays in force
                "files": [str(p) for p in self.files() if p.exists()],
                "errors": errors,
                "problems": [
                    f"{e['file']}:{e['line']}: {e['problem']}" if e["file"] else e["problem"]
                    for e in errors
                ],
                "detail": f"{where}{first['problem']}{more} — the last good policy stays in force",
            },
        )

    async def watch(self) -> None:
        """Poll until cancelled; loading runs in a thread so the proxy keeps relaying."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.poll)
            except Exception:
                logger.exception("socialguard: the policy watcher failed once; it goes on")
