"""The policy pull's unit: systemd's analyser accepts it and rates its exposure 3.0 or lower; it
runs the pull as root with writes limited to the policy folder, its own folder and its log, git
as socialguard-pull, and needs no path: only the repository and the site."""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy.test_unit import _directives, exposure, needs_analyze, verify_complaints

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "socialguard-pull.service"


def _for_analysis(tmp_path: Path) -> Path:
    out = tmp_path / UNIT.name
    out.write_text(re.sub(r"(?m)^ExecStart=\S+", "ExecStart=/bin/true", UNIT.read_text()))
    return out


@needs_analyze
def test_the_pull_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    unit = _for_analysis(tmp_path)
    assert verify_complaints(unit) == []
    assert exposure(unit) <= 3.0


def test_the_pull_writes_the_policy_folder_and_runs_git_as_its_own_user() -> None:
    found = _directives(UNIT.read_text())
    assert "User" not in found  # root: /etc/socialguard and allowlists/ have different owners
    assert found["ProtectSystem"] == ["strict"]
    assert found["ReadWritePaths"] == ["/etc/socialguard -/var/lib/socialguard-pull"]
    assert found["LogsDirectory"] == ["socialguard/pull"]
    assert found["InaccessiblePaths"] == ["-/var/lib/socialguard"]
    assert found["CapabilityBoundingSet"] == ["CAP_DAC_OVERRIDE CAP_CHOWN CAP_SETUID CAP_SETGID"]
    assert found["NoNewPrivileges"] == ["yes"]
    assert found["WorkingDirectory"] == ["/"]
    (command,) = found["ExecStart"]
    assert command == (
        "/opt/socialguard/bin/socialguard policy pull --repo ${REPO} --site ${SITE} "
        "--git-user socialguard-pull"
    )
