"""The block page through the real proxy: the rest-break line only for a zone with breaks."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

from tests.loopback import LOOPBACK


def window_not_now() -> tuple[str, str]:
    """A one-minute daily window that is not open now, so the request is blocked."""
    now = dt.datetime.now(zoneinfo.ZoneInfo("Europe/London"))
    hour = (now.hour + 3) % 24
    return f"{hour:02d}:00", f"{hour:02d}:01"


def page(run_proxy: Any, tmp_path: Path, internet: Any, zones: str) -> str:
    config = tmp_path / "policy.yaml"
    config.write_text(zones)
    proxy = run_proxy("--config", str(config), "--upstream", f"http://{LOOPBACK}:{internet[0]}")
    result = proxy.curl("-H", "Accept: text/html", "http://www.facebook.com/")
    assert "Social media is not allowed on the practice network" in result.stdout, result.stderr
    return result.stdout


def test_a_zone_with_breaks_is_told_its_next_break(
    run_proxy: Any, tmp_path: Path, internet: Any
) -> None:
    start, end = window_not_now()
    text = page(run_proxy, tmp_path, internet, (
        "zones:\n"
        "  - name: byod\n"
        f"    subnets: [{LOOPBACK}/32]\n"
        f"    break_windows: [{{days: mon-sun, from: '{start}', to: '{end}'}}]\n"
    ))  # fmt: skip
    assert "Your next rest break: " in text
    assert f"{start}\u2013{end}." in text


def test_a_zone_without_breaks_is_promised_none(
    run_proxy: Any, tmp_path: Path, internet: Any
) -> None:
    text = page(run_proxy, tmp_path, internet, (
        "zones:\n"
        "  - name: staff\n"
        f"    subnets: [{LOOPBACK}/32]\n"
        "  - name: byod\n"
        "    subnets: [10.20.0.0/24]\n"
        "    break_windows: [{days: mon-fri, from: '12:30', to: '13:30'}]\n"
    ))  # fmt: skip
    assert "rest break" not in text
