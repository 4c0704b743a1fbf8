"""Tests for socialguard.reload without a proxy: when the watcher reloads, what it records, and
that a rejected file never replaces the policy in force."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from socialguard.policy import Policy
from socialguard.policy_files import PolicyPaths, load_policy
from socialguard.reload import PolicyHolder, PolicyWatcher, file_stamp

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


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, PolicyWatcher, PolicyHolder, Recorded, list[bool]]:
    listed = tmp_path / "authorisations.yaml"
    listed.write_text(HEADER + "  []\n")
    config = tmp_path / "policy.yaml"
    config.write_text("timezone: Europe/London\n")
    paths = PolicyPaths(config, listed)
    holder = PolicyHolder(load_policy(paths))
    audit = Recorded()
    results: list[bool] = []
    watcher = PolicyWatcher(paths, holder, audit, on_result=results.append)
    watcher.poll()
    watcher.poll()  # the first look settles on the files as they are: nothing to record
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
    assert watcher.files() == [config, Path("allowlists/authorisations.yaml"), extra]
    assert file_stamp(Path("allowlists/authorisations.yaml")) is None


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
