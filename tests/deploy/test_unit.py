"""The systemd unit: systemd's own analyser accepts it and rates its exposure 3.0 or lower."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "socialguard.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze is not installed (apt-get install systemd; .ci/install-system-packages"
    " does it)",
)


def _unit_for_analysis(tmp_path: Path) -> Path:
    """The unit with its commands pointed at /bin/true, as the acceptance check does.

    The analyser checks that ExecStart exists on this machine; /opt/socialguard is not here.
    """
    text = re.sub(r"(?m)^ExecStart=\S+", "ExecStart=/bin/true", UNIT.read_text())
    text = re.sub(r"(?m)^ExecReload=.*$", "ExecReload=/bin/true", text)
    out = tmp_path / "socialguard.service"
    out.write_text(text)
    return out


def verify_complaints(unit: Path) -> list[str]:
    """What `systemd-analyze verify` says of a unit, beyond users, groups and files that exist
    only on a gateway."""
    done = subprocess.run(
        [str(ANALYZE), "verify", str(unit)], check=False, capture_output=True, text=True, timeout=60
    )
    return [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if not re.search(r"not found|Unknown user|Unknown group|No such file", line)
    ] + ([f"exit {done.returncode}"] if done.returncode else [])


def exposure(unit: Path) -> float:
    """`systemd-analyze security --offline=true`'s overall exposure level for a unit (0 to 10)."""
    done = subprocess.run(
        [str(ANALYZE), "security", "--offline=true", str(unit)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for [^:]*: ([0-9.]+)", done.stdout)
    assert match, done.stdout + done.stderr
    return float(match.group(1))


def _directives(text: str) -> dict[str, list[str]]:
    """Every `Key=value` of the unit, in order; a key may be given more than once."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@needs_analyze
def test_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit and prints no complaint."""
    assert verify_complaints(_unit_for_analysis(tmp_path)) == []


@needs_analyze
def test_unit_exposure_is_at_most_three(tmp_path: Path) -> None:
    """`systemd-analyze security --offline=true` rates the unit 3.0 or lower ("OK")."""
    assert exposure(_unit_for_analysis(tmp_path)) <= 3.0


def test_unit_runs_the_installed_proxy_as_its_own_user() -> None:
    """The unit runs /opt/socialguard as user socialguard, notifies, reloads by SIGHUP, restarts."""
    unit = _directives(UNIT.read_text())
    assert unit["ExecStart"] == ["/opt/socialguard/bin/socialguard run"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["User"] == ["socialguard"]
    assert unit["Group"] == ["socialguard"]
    assert unit["Environment"] == ["SOCIALGUARD_CONFIG=/etc/socialguard/policy.yaml"]


@pytest.mark.parametrize(
    ("kind", "mode"),
    [("Configuration", "0750"), ("State", "0750"), ("Logs", "0750")],
)
def test_unit_directories_are_socialguards_alone(kind: str, mode: str) -> None:
    """/etc, /var/lib and /var/log/socialguard are made by systemd with no access for others."""
    unit = _directives(UNIT.read_text())
    assert unit[f"{kind}Directory"] == ["socialguard"]
    assert unit[f"{kind}DirectoryMode"] == [mode]


def test_unit_grants_no_capability() -> None:
    """The default port is 8080: the proxy runs with no capability and gains none."""
    unit = _directives(UNIT.read_text())
    assert unit["CapabilityBoundingSet"] == [""]
    assert unit["AmbientCapabilities"] == [""]
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX AF_NETLINK"]
