"""Tests for proxy.reload without a proxy: when the watcher reloads, what it records, and
that a rejected file never replaces the policy in force."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from socialguard.audit.log import AuditLog
from socialguard.core.policy import Policy
from socialguard.files.policy_files import PolicyPaths, load_policy
from socialguard.proxy.reload import (
    PolicyHolder,
    PolicyWatcher,
    file_stamp,
    last_loaded,
    record_start,
)

HEADER = "approvers: [practice.manager]\nexemptions:\n"
ENTRY = """\
  - id: EX-2026-001
    who: {user: j.smith}
    services: [facebook]
    purpose: Maintain the practice Facebook page
    approved_by: practice.manager
    approved_on: 2026-11-01
    expires: 2027-10-31
"""


class Recorded:
    """Stands in for the AuditLog: keeps (event, fields) pairs."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def record(self, event: str, fields: dict[str, Any]) -> dict[str, Any]:
        self.events.append((event, fields))
        return fields

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def watched_files(tmp_path: Path) -> tuple[Path, PolicyPaths]:
    """An empty authorisation list and a policy.yaml, as a watcher would follow them."""
    listed = tmp_path / "authorisations.yaml"
    listed.write_text(HEADER + "  []\n")
    config = tmp_path / "policy.yaml"
    config.write_text("timezone: Europe/London\n")
    return listed, PolicyPaths(config, listed)


def settled(watcher: PolicyWatcher) -> PolicyWatcher:
    watcher.poll()
    watcher.poll()  # the first look settles on the files as they are: nothing to record
    return watcher


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, PolicyWatcher, PolicyHolder, Recorded, list[bool]]:
    listed, paths = watched_files(tmp_path)
    holder = PolicyHolder(load_policy(paths))
    audit = Recorded()
    results: list[bool] = []
    watcher = settled(PolicyWatcher(paths, holder, audit, on_result=results.append))
    assert audit.events == []
    return listed, watcher, holder, audit, results


def bump(path: Path, text: str) -> None:
    """Write and move the mtime on, so even a same-size rewrite is seen."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_a_change_is_taken_once_it_holds_still(setup: Any) -> None:
    """The first poll after a write waits; the next one loads, swaps and records."""
    listed, watcher, holder, audit, results = setup
    old = holder()
    bump(listed, HEADER + ENTRY)
    assert watcher.poll() is None  # may still be half-written
    assert watcher.poll() == "loaded"
    assert holder() is not old
    assert audit.names() == ["policy.loaded", "exemption.granted"]
    loaded = audit.events[0][1]
    assert (loaded["previous_digest"], loaded["policy_digest"]) == (old.digest, holder().digest)
    assert loaded["exemptions"] == 1
    assert audit.events[1][1]["exemption_id"] == "EX-2026-001"
    assert audit.events[1][1]["policy_digest"] == holder().digest
    assert results == [True]
    assert watcher.poll() is None  # nothing new


def test_a_rejected_file_keeps_the_policy_in_force(setup: Any) -> None:
    """An invalid file is recorded with file, line and problem, and never swapped in."""
    listed, watcher, holder, audit, results = setup
    good = holder()
    bump(listed, HEADER + ENTRY.replace("[facebook]", "[facebok]"))
    watcher.poll()
    assert watcher.poll() == "rejected"
    assert holder() is good
    ((name, fields),) = audit.events
    assert name == "policy.rejected"
    assert fields["errors"] == [
        {
            "file": str(listed),
            "line": 5,
            "problem": "exemptions[0] (EX-2026-001).services: unknown service 'facebok' — "
            "see 'socialguard catalog list'",
        }
    ]
    assert fields["problems"] == [f"{listed}:5: {fields['errors'][0]['problem']}"]
    assert fields["policy_digest"] == good.digest
    assert fields["detail"].endswith("the last good policy stays in force")
    assert results == [False]


def test_putting_the_old_file_back_is_recorded(setup: Any) -> None:
    """After a rejection, the same good policy coming back is a policy.loaded event."""
    listed, watcher, holder, audit, _results = setup
    good_text = listed.read_text()
    bump(listed, "exemptions: [ {id: broken\n")
    watcher.poll()
    watcher.poll()
    bump(listed, good_text)
    watcher.poll()
    assert watcher.poll() == "loaded"
    assert audit.names() == ["policy.rejected", "policy.loaded"]
    assert audit.events[1][1]["policy_digest"] == holder().digest


def test_touching_a_file_without_changing_it_records_nothing(setup: Any) -> None:
    """Same bytes, same digest: no event."""
    listed, watcher, _holder, audit, results = setup
    bump(listed, listed.read_text())
    watcher.poll()
    assert watcher.poll() is None
    assert audit.events == []
    assert results == []


def test_a_failing_loader_is_a_rejection_not_a_crash(setup: Any) -> None:
    """An unexpected error while loading is recorded and the old policy stays."""
    listed, _watcher, holder, audit, _results = setup
    good = holder()

    def broken(_paths: PolicyPaths) -> Policy:
        raise RuntimeError("disk on fire")

    watcher = PolicyWatcher(PolicyPaths(None, listed), holder, audit, load=broken)
    assert watcher.reload() == "rejected"
    assert holder() is good
    assert "internal error: RuntimeError('disk on fire')" in audit.events[0][1]["problems"][0]


def test_the_watched_files_include_extra_catalogues_and_absent_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A default file that does not exist yet is watched too: creating it counts as a change."""
    monkeypatch.chdir(tmp_path)
    extra = tmp_path / "extra.yaml"
    extra.write_text("services: {}\n")
    config = tmp_path / "policy.yaml"
    config.write_text(f"catalogs: [{extra}]\n")
    paths = PolicyPaths(config, None)
    watcher = PolicyWatcher(paths, PolicyHolder(load_policy(paths)), Recorded())
    # A policy file outside config/ and /etc/socialguard leaves the list at its default place,
    # under the current directory (here tmp_path).
    default = Path("allowlists/authorisations.yaml")
    assert watcher.files() == [config, default, extra]
    assert file_stamp(default) is None


def test_watch_polls_until_cancelled(setup: Any) -> None:
    """The asyncio loop polls in a thread and stops cleanly when cancelled."""
    listed, watcher, holder, audit, _results = setup
    watcher.interval = 0.01
    bump(listed, HEADER + ENTRY)

    async def run() -> None:
        task = asyncio.create_task(watcher.watch())
        for _ in range(500):
            if audit.events:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert audit.names() == ["policy.loaded", "exemption.granted"]
    assert len(holder().authorisations.exemptions) == 1


# -- an audit log that refuses a write ---------------------------------------------------


class Flaky(Recorded):
    """Refuses (OSError, as a full disk does) while `failing` is set, from the named event on."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: str | None = None
        self.attempts = 0

    def record(self, event: str, fields: dict[str, Any]) -> dict[str, Any]:
        self.attempts += 1
        if self.failing in ("*", event):
            raise OSError(28, "No space left on device")
        return super().record(event, fields)


class CountingHolder(PolicyHolder):
    def __init__(self, policy: Policy) -> None:
        super().__init__(policy)
        self.swaps = 0

    def replace(self, policy: Policy) -> Policy:
        self.swaps += 1
        return super().replace(policy)


@pytest.fixture
def flaky(tmp_path: Path) -> tuple[Path, PolicyWatcher, CountingHolder, Flaky, list[bool]]:
    listed, paths = watched_files(tmp_path)
    holder = CountingHolder(load_policy(paths))
    audit = Flaky()
    results: list[bool] = []
    watcher = settled(PolicyWatcher(paths, holder, audit, on_result=results.append))
    return listed, watcher, holder, audit, results


def test_events_the_log_refused_are_written_at_the_next_poll(flaky: Any) -> None:
    """The policy is in force at once; its events follow once the disk takes them, once each."""
    listed, watcher, holder, audit, results = flaky
    audit.failing = "exemption.granted"
    bump(listed, HEADER + ENTRY)
    assert watcher.poll() is None
    with pytest.raises(OSError, match="No space left"):
        watcher.poll()
    assert len(holder().authorisations.exemptions) == 1  # in force before it was recorded
    assert (holder.swaps, results) == (1, [True])
    assert audit.names() == ["policy.loaded"]
    watcher.poll()  # still failing: kept, not lost, not reloaded
    assert audit.names() == ["policy.loaded"]
    audit.failing = None
    assert watcher.poll() is None
    assert audit.names() == ["policy.loaded", "exemption.granted"]
    for _ in range(3):
        assert watcher.poll() is None
    assert audit.names() == ["policy.loaded", "exemption.granted"]
    assert (holder.swaps, results) == (1, [True])


def test_a_refused_policy_loaded_is_retried_with_its_exemption_events(flaky: Any) -> None:
    """Nothing recorded at all the first time: all of it, in order, the next."""
    listed, watcher, holder, audit, results = flaky
    audit.failing = "*"
    bump(listed, HEADER + ENTRY)
    watcher.poll()
    with pytest.raises(OSError, match="No space left"):
        watcher.poll()
    assert audit.names() == []
    audit.failing = None
    watcher.poll()
    watcher.poll()
    assert audit.names() == ["policy.loaded", "exemption.granted"]
    assert audit.events[1][1]["policy_digest"] == holder().digest
    assert (holder.swaps, results) == (1, [True])


def test_a_refused_rejection_is_recorded_once(flaky: Any) -> None:
    """A rejected file whose policy.rejected the log refused is not rejected twice."""
    listed, watcher, holder, audit, results = flaky
    good = holder()
    audit.failing = "policy.rejected"
    bump(listed, "exemptions: [ {id: broken\n")
    watcher.poll()
    with pytest.raises(OSError, match="No space left"):
        watcher.poll()
    audit.failing = None
    for _ in range(4):
        watcher.poll()
    assert audit.names() == ["policy.rejected"]
    assert results == [False]
    assert holder() is good


def test_a_new_change_is_taken_while_old_events_are_still_owed(flaky: Any) -> None:
    """A revocation must not wait on a full disk: it is in force, and recorded after the rest."""
    listed, watcher, holder, audit, results = flaky
    audit.failing = "*"
    bump(listed, HEADER + ENTRY)
    watcher.poll()
    with pytest.raises(OSError, match="No space left"):
        watcher.poll()
    revoked = ENTRY + "    revoked: {on: 2026-11-24, by: practice.manager, reason: Page closed}\n"
    bump(listed, HEADER + revoked)
    watcher.poll()
    with pytest.raises(OSError, match="No space left"):
        watcher.poll()
    assert holder().authorisations.exemptions[0].revoked is not None
    audit.failing = None
    for _ in range(3):
        watcher.poll()
    assert audit.names() == [
        "policy.loaded",
        "exemption.granted",
        "policy.loaded",
        "exemption.revoked",
    ]
    assert (holder.swaps, results) == (2, [True, True])


def test_watch_goes_on_after_the_log_refused_a_write(flaky: Any) -> None:
    """In the running proxy the failure is logged, and the next polls record what was owed."""
    listed, watcher, _holder, audit, _results = flaky
    watcher.interval = 0.01
    audit.failing = "exemption.granted"
    bump(listed, HEADER + ENTRY)

    async def run() -> None:
        task = asyncio.create_task(watcher.watch())
        for _ in range(500):
            if audit.attempts >= 3:
                break
            await asyncio.sleep(0.01)
        audit.failing = None
        for _ in range(500):
            if "exemption.granted" in audit.names():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert audit.names() == ["policy.loaded", "exemption.granted"]


# -- start-up: what changed while the proxy was stopped ------------------------------------

TWO = ENTRY + ENTRY.replace("EX-2026-001", "EX-2026-002").replace("j.smith", "k.jones")


def start(tmp_path: Path, text: str, audit_path: Path) -> list[dict[str, Any]]:
    """One `socialguard run` start-up against the log: what it wrote."""
    listed = tmp_path / "authorisations.yaml"
    listed.write_text(text)
    config = tmp_path / "policy.yaml"
    config.write_text("timezone: Europe/London\n")
    paths = PolicyPaths(config, listed)
    log = AuditLog(audit_path)
    try:
        before = len(audit_path.read_text().splitlines())
        record_start(log, load_policy(paths), paths, audit_path)
    finally:
        log.close()
    return [json.loads(line) for line in audit_path.read_text().splitlines()[before:]]


def test_the_first_start_records_the_list_and_nothing_else(tmp_path: Path) -> None:
    """A new log has nothing to compare with: policy.loaded, carrying the list as a baseline."""
    audit_path = tmp_path / "audit.jsonl"
    (loaded,) = start(tmp_path, HEADER + ENTRY, audit_path)
    assert loaded["event"] == "policy.loaded"
    assert loaded["trigger"] == "start"
    assert "previous_digest" not in loaded
    entry = loaded["exemption_snapshot"]["EX-2026-001"]
    assert (entry["who_kind"], entry["who"], entry["services"]) == ("user", "j.smith", ["facebook"])
    assert (entry["approved_by"], entry["expires"]) == (
        "practice.manager",
        "2027-11-01T00:00:00+00:00",
    )


def test_changes_made_while_the_proxy_was_stopped_are_recorded_at_start(tmp_path: Path) -> None:
    """Granted, renewed, revoked, changed and removed while stopped: each is an event at start."""
    audit_path = tmp_path / "audit.jsonl"
    first = start(tmp_path, HEADER + TWO, audit_path)
    edited = (
        ENTRY.replace("approved_on: 2026-11-01", "approved_on: 2026-11-20").replace(
            "expires: 2027-10-31", "expires: 2027-11-15"
        )
        + "    revoked: {on: 2026-11-24, by: practice.manager, reason: Page closed}\n"
        + ENTRY.replace("EX-2026-001", "EX-2026-003").replace("j.smith", "m.patel")
    )
    written = start(tmp_path, HEADER + edited, audit_path)
    names = [(e["event"], e.get("exemption_id")) for e in written]
    assert names == [
        ("policy.loaded", None),
        ("exemption.revoked", "EX-2026-001"),
        ("exemption.changed", "EX-2026-001"),
        ("exemption.granted", "EX-2026-003"),
        ("exemption.removed", "EX-2026-002"),
    ]
    loaded = written[0]
    assert loaded["previous_digest"] == first[0]["policy_digest"]
    for event in written[1:]:
        assert event["trigger"] == "start"
        assert event["policy_digest"] == loaded["policy_digest"]
        assert "while the proxy was stopped" in event["detail"]
    granted = written[3]
    assert (granted["who"], granted["what"], granted["approved_by"]) == (
        "user m.patel",
        ["facebook"],
        "practice.manager",
    )
    # Started again with no change in between: nothing more than policy.loaded.
    assert [e["event"] for e in start(tmp_path, HEADER + edited, audit_path)] == ["policy.loaded"]


def test_a_renewal_while_stopped_is_a_renewal(tmp_path: Path) -> None:
    audit_path = tmp_path / "audit.jsonl"
    start(tmp_path, HEADER + ENTRY, audit_path)
    renewed = ENTRY.replace("approved_on: 2026-11-01", "approved_on: 2026-11-24").replace(
        "expires: 2027-10-31", "expires: 2027-11-20"
    )
    _, event = start(tmp_path, HEADER + renewed, audit_path)
    assert (event["event"], event["previous_expires"]) == (
        "exemption.renewed",
        "2027-11-01T00:00:00+00:00",
    )


def test_start_compares_with_the_last_reload_not_the_last_start(tmp_path: Path) -> None:
    """The watcher's policy.loaded carries the snapshot too: it is the list last in force."""
    audit_path = tmp_path / "audit.jsonl"
    start(tmp_path, HEADER + "  []\n", audit_path)
    listed = tmp_path / "authorisations.yaml"
    paths = PolicyPaths(tmp_path / "policy.yaml", listed)
    log = AuditLog(audit_path)
    watcher = PolicyWatcher(paths, PolicyHolder(load_policy(paths)), log)
    listed.write_text(HEADER + ENTRY)
    assert watcher.reload() == "loaded"
    log.close()
    assert [e["event"] for e in start(tmp_path, HEADER + ENTRY, audit_path)] == ["policy.loaded"]


def test_a_log_from_before_snapshots_has_no_baseline(tmp_path: Path) -> None:
    """An earlier policy.loaded without a snapshot (an older version, or damaged): no guesses."""
    audit_path = tmp_path / "audit.jsonl"
    log = AuditLog(audit_path)
    log.record("policy.loaded", {"policy_digest": "old", "exemptions": 0})
    log.close()
    (loaded,) = start(tmp_path, HEADER + ENTRY, audit_path)
    assert loaded["previous_digest"] == "old"


def test_the_last_policy_loaded_is_read_from_the_end(tmp_path: Path) -> None:
    """Behind a megabyte of traffic, found within a few kilobytes of reading; a torn last line
    (the proxy killed mid-write) is skipped."""
    audit_path = tmp_path / "audit.jsonl"
    traffic = b"".join(
        json.dumps({"event": "access.blocked", "user": f"u{i}", "pad": "x" * 200}).encode() + b"\n"
        for i in range(5000)
    )
    audit_path.write_bytes(
        b'{"event":"policy.loaded","policy_digest":"first"}\n'
        + traffic
        + b'{"event":"policy.loaded","policy_digest":"last"}\n'
        + traffic[:4000]
    )
    with audit_path.open("ab") as torn:
        torn.write(b'{"event":"policy.loaded","policy_digest":"to')
    assert audit_path.stat().st_size > 1_000_000
    found = last_loaded(audit_path, limit=16_384)
    assert found is not None
    assert found["policy_digest"] == "last"
    # Nothing within the limit: None, rather than reading the whole log.
    assert last_loaded(audit_path, limit=1_000) is None


def test_the_last_policy_loaded_may_be_in_a_rotated_file(tmp_path: Path) -> None:
    """The proxy ran past a rotation without a reload: the compressed file before is read."""
    audit_path = tmp_path / "audit.jsonl"
    log = AuditLog(audit_path)
    log.record("policy.loaded", {"policy_digest": "before-rotation"})
    log.rotate()
    log.record("access.blocked", {"user": "a"})
    log.close()
    assert len(list(tmp_path.glob("audit.*.jsonl*"))) == 1
    found = last_loaded(audit_path)
    assert found is not None
    assert found["policy_digest"] == "before-rotation"
    assert last_loaded(tmp_path / "none.jsonl") is None
