"""The policy pull's unit: systemd's analyser accepts it and rates its exposure 3.0 or lower; it
runs the pull as root with writes limited to the policy folder, its own folder and its log, git
as socialguard-pull, and needs no path: only the repository and the site."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.deploy.test_unit import ANALYZE, _directives, needs_analyze

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "socialguard-pull.service"


def _for_analysis(tmp_path: Path) -> Path:
    out = tmp_path / UNIT.name
    out.write_text(re.sub(r"(?m)^ExecStart=\S+", "ExecStart=/bin/true", UNIT.read_text()))
    return out


@needs_analyze
def test_the_pull_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    unit = _for_analysis(tmp_path)
    done = subprocess.run([str(ANALYZE), "verify", str(unit)], check=False,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    complaints = [
        line for line in (done.stdout + done.stderr).splitlines()
        if not re.search(r"not found|Unknown user|Unknown group|No such file", line)
    ]  # fmt: skip
    assert complaints == []
    done = subprocess.run([str(ANALYZE), "security", "--offline=true", str(unit)], check=False,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    match = re.search(r"Overall exposure level for [^:]*: ([0-9.]+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= 3.0, done.stdout


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
