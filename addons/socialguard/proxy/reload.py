"""The policy in force, swapped whole and atomically; a rejected file never replaces it.

`PolicyWatcher` follows the policy files while the proxy runs: it notices a change by each
file's (mtime, size, inode) — an atomic rename changes the inode even within one mtime tick —
loads and validates everything again, and either puts the new policy in force and records it
(`policy.loaded`, then one `exemption.*` event per change to the list) or records
`policy.rejected` with every problem and keeps the last good policy. No mitmproxy here: the
runner starts `watch()` beside the proxy.

Every `policy.loaded` carries a snapshot of the exemptions in force, so `record_start` can
compare the list the proxy starts with against the last one recorded: an edit made while the
proxy was stopped is in the audit log as well as one made while it ran.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from socialguard.audit.files import AuditError, Segment, log_segments, read_bytes
from socialguard.core.events import Event
from socialguard.core.exemption_changes import exemption_changes, from_snapshot, snapshot
from socialguard.core.policy import Policy
from socialguard.core.problems import ConfigError
from socialguard.core.settings import DEFAULT_POLICY_PATH
from socialguard.files.policy_files import PolicyPaths, load_policy

logger = logging.getLogger("socialguard")

# Polled twice a second; a change is taken once it has held still for one poll (so a file
# caught half-written by an editor is not rejected), i.e. within about a second.
POLL_SECONDS = 0.5

Stamp = tuple[int, int, int] | None

LOADED = Event.POLICY_LOADED
SNAPSHOT = "exemption_snapshot"
# How far back from the end of the log start-up looks for the last policy.loaded. Every start
# and reload writes one, so it is normally in the last few lines; the bound keeps a start cheap
# when it is not there at all (a new log, or one that retention has emptied).
SCAN_LIMIT = 64 * 1024 * 1024
_BLOCK = 1 << 16


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


def loaded_fields(policy: Policy, paths: PolicyPaths, trigger: str) -> dict[str, Any]:
    """What a `policy.loaded` event says, the exemptions in force included."""
    return {
        "policy_digest": policy.digest,
        "trigger": trigger,
        "files": [str(p) for p in paths.watched(policy.settings)],
        "exemptions": len(policy.authorisations.exemptions),
        "services": len(policy.catalog.services),
        "warnings": list(policy.authorisations.warnings),
        SNAPSHOT: snapshot(policy.authorisations),
    }


def _lines_from_end(segment: Segment) -> Iterator[bytes]:
    """A segment's lines, last first; a plain file is read backwards a block at a time."""
    if segment.compressed:
        yield from reversed(read_bytes(segment).split(b"\n"))
        return
    with segment.path.open("rb") as stream:
        end = stream.seek(0, os.SEEK_END)
        carry = b""
        while end > 0:
            start = max(0, end - _BLOCK)
            stream.seek(start)
            pieces = (stream.read(end - start) + carry).split(b"\n")
            end = start
            carry = pieces[0]  # may continue in the block before
            yield from reversed(pieces[1:])
        yield carry


def last_loaded(audit_path: Path, limit: int = SCAN_LIMIT) -> dict[str, Any] | None:
    """The last `policy.loaded` event in the log (the active file, then rotated ones), or None.

    Read from the end and only as far as needed; None when there is none within `limit` bytes
    or a file cannot be read (start-up must not fail for want of history).
    """
    needle = f'"{LOADED}"'.encode()
    scanned = 0
    try:
        for segment in reversed(log_segments(audit_path)):
            for line in _lines_from_end(segment):
                scanned += len(line) + 1
                if scanned > limit:
                    return None
                if needle not in line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a torn line
                if isinstance(event, dict) and event.get("event") == LOADED:
                    return event
    except (OSError, AuditError) as error:
        logger.warning("socialguard: the last recorded policy could not be read: %s", error)
    return None


def record_start(audit: Recorder, policy: Policy, paths: PolicyPaths, audit_path: Path) -> int:
    """Record the policy the proxy starts with, and every change to the exemptions since the
    last policy recorded in the log: what was granted, renewed, revoked or changed while the
    proxy was stopped. Returns how many exemption events were written.

    A log with no earlier `policy.loaded` (a new one), or one written before snapshots were
    recorded, has nothing to compare with: only `policy.loaded` is written, and its snapshot
    is the baseline from then on.
    """
    previous = last_loaded(audit_path)
    fields = loaded_fields(policy, paths, "start")
    if previous is not None:
        fields["previous_digest"] = previous.get("policy_digest")
    audit.record(LOADED, fields)
    before = from_snapshot(previous.get(SNAPSHOT)) if previous is not None else None
    if before is None:
        return 0
    changes = exemption_changes(before, policy.authorisations)
    for change in changes:
        audit.record(
            change.event,
            {
                **change.fields,
                "policy_digest": policy.digest,
                "trigger": "start",
                "detail": "changed while the proxy was stopped; found at start-up",
            },
        )
    return len(changes)


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
        # Each file in force is named outright: deleting one is refused, not read as "defaults".
        self._paths = paths.pin(holder().settings)
        self._holder = holder
        self._audit = audit
        self._load = load
        self.interval = interval
        self._on_result = on_result  # e.g. the reloads metric: True taken, False rejected
        # None until the first poll: a change made between start-up and the first poll counts.
        self._seen: tuple[Stamp, ...] | None = None
        self._pending: tuple[Stamp, ...] | None = None
        # A change taken (or rejected) whose events are not all on record yet: it becomes
        # seen once they are, and is neither loaded nor swapped in again meanwhile.
        self._unseen: tuple[Stamp, ...] | None = None
        self._owed: list[tuple[str, dict[str, Any]]] = []
        self._rejected = False
        self._polling = threading.Lock()  # a SIGHUP reload and a poll never run at once

    def files(self) -> list[Path]:
        """The files a policy is made of, including default paths that do not exist yet: the
        policy file, the authorisation list, the extra catalogues, the signup endpoints file."""
        settings = self._holder().settings
        config = self._paths.config_path() or DEFAULT_POLICY_PATH
        authorisations = self._paths.authorisations or settings.authorisations_path
        endpoints = [settings.signup_endpoints] if settings.signup_endpoints is not None else []
        return [config, authorisations, *settings.catalogs, *endpoints]

    def _locked_poll(self) -> str | None:
        with self._polling:
            return self.poll()

    def stamps(self) -> tuple[Stamp, ...]:
        return tuple(file_stamp(path) for path in self.files())

    def poll(self) -> str | None:
        """Look once; returns 'loaded', 'rejected' or None (nothing new to take).

        Raises when the audit log refused an event: the events not yet recorded are kept,
        in order, and written first at the next poll.
        """
        if self._owed:
            try:
                self._flush()
            except Exception:  # the disk may still be full: a new change is still taken
                logger.exception("socialguard: recording the last policy change failed again")
        if self._unseen is not None and not self._owed:
            self._seen, self._unseen = self._unseen, None
        stamps = self.stamps()
        if stamps in (self._seen, self._unseen):
            self._pending = None
            return None
        if stamps != self._pending:
            self._pending = stamps  # changed since the last look: let the writer finish
            return None
        self._pending, self._unseen = None, stamps
        result = self.reload()
        self._seen, self._unseen = stamps, None
        return result

    def _record(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Record in order after anything still owed; what the log refuses stays owed."""
        self._owed.extend(events)
        self._flush()

    def _flush(self) -> None:
        while self._owed:
            event, fields = self._owed[0]
            self._audit.record(event, fields)
            del self._owed[0]

    def reload_now(self, trigger: str = "sighup") -> str | None:
        """Read every file now (SIGHUP), whether or not it looks changed; the result is
        recorded even when nothing changed, so the log shows the reload was asked for."""
        with self._polling:
            stamps = self.stamps()
            self._unseen = stamps
            result = self.reload(trigger, force=True)
            self._seen, self._unseen, self._pending = stamps, None, None
            return result

    def reload(self, trigger: str = "reload", *, force: bool = False) -> str | None:
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
        if policy.digest == old.digest and not self._rejected and not force:
            return None  # touched, not changed
        # In force first, recorded second: a revocation must not wait on a slow or full disk.
        self._holder.replace(policy)
        self._paths = self._paths.pin(
            policy.settings
        )  # a default file that appeared is now in force too
        self._rejected = False
        if self._on_result is not None:
            self._on_result(True)
        events: list[tuple[str, dict[str, Any]]] = [
            (
                LOADED,
                {**loaded_fields(policy, self._paths, trigger), "previous_digest": old.digest},
            )
        ]
        try:
            changes = exemption_changes(old.authorisations, policy.authorisations)
        except Exception:  # a bug here must not stop policy.loaded being recorded
            logger.exception("socialguard: comparing the exemption lists failed")
            changes = []
        events += [
            (change.event, {**change.fields, "policy_digest": policy.digest}) for change in changes
        ]
        self._record(events)
        return "loaded"

    def _reject(self, errors: list[dict[str, Any]]) -> None:
        self._rejected = True
        if self._on_result is not None:
            self._on_result(False)
        first = errors[0] if errors else {"file": None, "line": None, "problem": "unknown"}
        where = f"{first['file']}:{first['line']}: " if first["file"] else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        fields = {
            "policy_digest": self._holder().digest,  # the policy that stays in force
            "files": [str(p) for p in self.files() if p.exists()],
            "errors": errors,
            "problems": [
                f"{e['file']}:{e['line']}: {e['problem']}" if e["file"] else e["problem"]
                for e in errors
            ],
            "detail": f"{where}{first['problem']}{more} — the last good policy stays in force",
        }
        self._record([(Event.POLICY_REJECTED, fields)])

    async def watch(self) -> None:
        """Poll until cancelled; loading runs in a thread so the proxy keeps relaying."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self._locked_poll)
            except Exception:
                logger.exception("socialguard: the policy watcher failed once; it goes on")
