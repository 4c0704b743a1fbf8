"""The page's systemd unit: systemd's analyser accepts it, rates its exposure 3.0 or lower, and
it can write the list's folder and its own, never the CA's."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.deploy.test_unit import ANALYZE, _directives, needs_analyze

SYSTEMD = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def _for_analysis(tmp_path: Path, name: str) -> Path:
    text = (SYSTEMD / name).read_text()
    text = re.sub(r"(?m)^ExecStart=.*(\n\s+.*)*", "ExecStart=/bin/true", text)
    out = tmp_path / name
    out.write_text(text)
    return out


@needs_analyze
def test_the_page_and_digest_units_verify(tmp_path: Path) -> None:
    for name in ("socialguard-admin.service", "socialguard-digest.service"):
        unit = _for_analysis(tmp_path, name)
        done = subprocess.run([str(ANALYZE), "verify", str(unit)], check=False,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        complaints = [
            line for line in (done.stdout + done.stderr).splitlines()
            if not re.search(r"not found|Unknown user|Unknown group|No such file", line)
        ]  # fmt: skip
        assert complaints == [], name


@needs_analyze
def test_the_page_unit_exposure_is_at_most_three(tmp_path: Path) -> None:
    unit = _for_analysis(tmp_path, "socialguard-admin.service")
    done = subprocess.run([str(ANALYZE), "security", "--offline=true", str(unit)], check=False,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    match = re.search(r"Overall exposure level for [^:]*: ([0-9.]+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= 3.0, done.stdout


def test_the_page_writes_the_list_and_its_own_folder_never_the_ca() -> None:
    found = _directives((SYSTEMD / "socialguard-admin.service").read_text())
    assert found["ProtectSystem"] == ["strict"]
    assert found["ReadWritePaths"] == ["/etc/socialguard/allowlists"]
    assert found["LogsDirectory"] == ["socialguard/admin"]
    assert found["InaccessiblePaths"] == ["-/var/lib/socialguard"]
    assert found["User"] == ["socialguard-admin"]
    assert found["CapabilityBoundingSet"] == [""]
