"""A policy file deleted under the running proxy is a rejection: the last good policy stays.

The proxy runs on its default paths (config/policy.yaml and allowlists/authorisations.yaml in
its working directory), as a practice runs it and as ../shared/acceptance/gate.sh checks.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import LOOPBACK
from tests.proxy.conftest import RunningProxy, start, stop

ROOT = Path(__file__).resolve().parents[2]
WITHIN = 3.0


def status(proxy: RunningProxy, url: str) -> str:
    return proxy.curl("-o", "/dev/null", "-w", "%{http_code}", url).stdout


def wait_for_event(proxy: RunningProxy, name: str, count: int = 1) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WITHIN + 2
    while True:
        found = [e for e in proxy.events() if e["event"] == name]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture
def site(tmp_path: Path, internet: Any) -> Any:
    """A practice folder whose policy enforces information sharing (Wikipedia is blocked)."""
    (tmp_path / "config").mkdir()
    (tmp_path / "allowlists").mkdir()
    (tmp_path / "config" / "policy.yaml").write_text(
        "enforced_categories: [social-networking, information-sharing]\n"
    )
    shutil.copy(ROOT / "allowlists" / "authorisations.yaml", tmp_path / "allowlists")
    port, _seen = internet
    proxy = start(tmp_path, "--upstream", f"http://{LOOPBACK}:{port}")
    yield proxy
    stop(proxy)


def test_a_deleted_policy_file_keeps_the_last_good_policy(site: RunningProxy) -> None:
    wikipedia = "http://en.wikipedia.org/"
    assert status(site, wikipedia) == "403"
    policy = site.tmp / "config" / "policy.yaml"
    kept = policy.read_text()
    policy.unlink()
    [rejected] = wait_for_event(site, "policy.rejected")
    assert "config/policy.yaml" in rejected["detail"]
    assert "was in force and is now missing" in rejected["detail"]
    assert "the last good policy stays in force" in rejected["detail"]
    assert status(site, wikipedia) == "403"  # not the embedded defaults, which allow it
    loaded = [e for e in site.events() if e["event"] == "policy.loaded"]
    assert len(loaded) == 1  # only the start: nothing was loaded in its place
    # The same holds for the authorisation list.
    listed = site.tmp / "allowlists" / "authorisations.yaml"
    listed.rename(site.tmp / "allowlists" / "moved.yaml")
    found = wait_for_event(site, "policy.rejected", 2)
    assert len(found) == 2
    assert len(found[1]["problems"]) == 2  # both files named: the policy file is still gone
    assert (
        "allowlists/authorisations.yaml:0: the authorisation list was in force"
        in (found[1]["problems"][1])
    )
    # Put back, the files are taken again.
    (site.tmp / "allowlists" / "moved.yaml").rename(listed)
    policy.write_text(kept)
    assert len(wait_for_event(site, "policy.loaded", 2)) == 2
    assert status(site, wikipedia) == "403"
