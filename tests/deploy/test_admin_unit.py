"""The page's systemd unit: systemd's analyser accepts it, rates its exposure 3.0 or lower, and
it can write the list's folder and its own, never the CA's."""

from __future__ import annotations

import re
from pathlib import Path

from tests.deploy.test_unit import _directives, exposure, needs_analyze, verify_complaints

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
        assert verify_complaints(unit) == [], name


@needs_analyze
def test_the_page_unit_exposure_is_at_most_three(tmp_path: Path) -> None:
    assert exposure(_for_analysis(tmp_path, "socialguard-admin.service")) <= 3.0


def test_the_page_writes_the_list_and_its_own_folder_never_the_ca() -> None:
    found = _directives((SYSTEMD / "socialguard-admin.service").read_text())
    assert found["ProtectSystem"] == ["strict"]
    assert found["ReadWritePaths"] == ["/etc/socialguard/allowlists"]
    assert found["LogsDirectory"] == ["socialguard/admin"]
    assert found["InaccessiblePaths"] == ["-/var/lib/socialguard"]
    assert found["User"] == ["socialguard-admin"]
    assert found["CapabilityBoundingSet"] == [""]
