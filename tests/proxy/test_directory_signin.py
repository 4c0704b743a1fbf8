"""Directory sign-in through the real proxy against a real OpenLDAP server (slapd) with TLS.

A directory user signs in and gets the exemption of their directory group; a wrong password
and an unknown name are refused; a server whose certificate the CA file does not vouch for is
refused; a directory stopped mid-test gives prompt 407s and an event, never a hang.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.proxy.conftest import RunningProxy
from tests.proxy.slapd import (
    CLINICIANS,
    PASSWORDS,
    RECEPTION,
    SERVICE,
    Slapd,
    available,
    make_ca,
    start_slapd,
)

pytestmark = pytest.mark.skipif(
    not available(),
    reason="slapd and ldap-utils are not installed: run .ci/install-system-packages",
)

EXEMPTION = """\
approvers: [practice.manager]
exemptions:
  - id: EX-RECEPTION
    who: {{group: reception}}
    services: [youtube]
    purpose: Play the practice's patient information videos
    approved_by: practice.manager
    approved_on: {today}
    expires: {until}
"""


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()


def _policy(tmp: Path, server: Slapd, upstream: int, ca: Path | None = None) -> list[str]:
    password = tmp / "bind.pw"
    password.write_text("service-secret\n")
    password.chmod(0o600)
    policy = tmp / "policy.yaml"
    policy.write_text(
        "identity:\n  ldap:\n"
        f"    url: {server.url}\n"
        f"    ca_file: {ca or server.ca}\n"
        f'    bind_dn: "{SERVICE}"\n'
        f"    bind_password_file: {password}\n"
        '    base_dn: "dc=practice,dc=example"\n'
        '    user_filter: "(uid={user})"\n'
        "    timeout_seconds: 2\n"
        "    groups:\n"
        f'      "{RECEPTION.upper()}": reception\n'
        f'      "{CLINICIANS}": clinicians\n'
    )
    exemptions = tmp / "authorisations.yaml"
    today = dt.date.today()  # noqa: DTZ011 - the proxy checks exemptions against today
    exemptions.write_text(EXEMPTION.format(today=today, until=today + dt.timedelta(days=300)))
    return [
        "--config",
        str(policy),
        "--authorisations",
        str(exemptions),
        "--upstream",
        f"http://127.0.0.1:{upstream}",
    ]


def _get(proxy: RunningProxy, url: str, user: str | None, password: str) -> tuple[str, float]:
    """(HTTP status, seconds taken) of one request through the proxy as `user`."""
    auth = ["-U", f"{user}:{password}"] if user else []
    started = time.monotonic()
    result = subprocess.run(
        ["curl", "-sS", "-m", "15", "-o", "/dev/null", "-w", "%{http_code}", "-x", proxy.url,
         *auth, url],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return result.stdout.strip(), time.monotonic() - started


def _events(proxy: RunningProxy, name: str) -> list[dict[str, Any]]:
    lines = proxy.audit.read_text().splitlines() if proxy.audit.exists() else []
    return [e for e in map(json.loads, filter(str.strip, lines)) if e["event"] == name]


def test_directory_user_gets_their_groups_exemption(
    slapd: Slapd, run_proxy: Any, internet: tuple[int, list[str]], tmp_path: Path
) -> None:
    """a.brown (Reception in the directory) may watch YouTube under the group's exemption;
    d.evans (Clinicians) signs in but is blocked; wrong passwords and unknown names get 407."""
    proxy = run_proxy(*_policy(tmp_path, slapd, internet[0]))
    assert _get(proxy, "http://www.youtube.com/", "a.brown", PASSWORDS["a.brown"])[0] == "200"
    assert _get(proxy, "http://www.youtube.com/", "d.evans", PASSWORDS["d.evans"])[0] == "403"
    assert _get(proxy, "http://www.youtube.com/", "a.brown", "wrong")[0] == "407"
    assert _get(proxy, "http://www.youtube.com/", "nobody", "Reception-1")[0] == "407"
    assert _get(proxy, "http://www.youtube.com/", None, "")[0] == "407"
    assert _get(proxy, "http://www.youtube.com/", "a.brown", "")[0] == "407"  # no anonymous bind
    exception = _events(proxy, "access.exception")
    assert [(e["user"], e["exemption_id"]) for e in exception] == [("a.brown", "EX-RECEPTION")]
    blocked = _events(proxy, "access.blocked")
    assert [(e["user"], e["service"]) for e in blocked] == [("d.evans", "youtube")]
    # Remembered: the same sign-in again is answered without waiting on the directory.
    assert _get(proxy, "http://www.youtube.com/2", "a.brown", PASSWORDS["a.brown"])[0] == "200"


def test_unverifiable_directory_certificate_is_refused(
    slapd: Slapd, run_proxy: Any, internet: tuple[int, list[str]], tmp_path: Path
) -> None:
    """A CA file that did not sign the server's certificate: nobody signs in, and it says why."""
    other_ca, _key = make_ca(tmp_path, "other-ca")
    proxy = run_proxy(*_policy(tmp_path, slapd, internet[0], ca=other_ca))
    status, _ = _get(proxy, "http://www.youtube.com/", "a.brown", PASSWORDS["a.brown"])
    assert status == "407"
    assert not _events(proxy, "access.exception")
    unavailable = _events(proxy, "signin.directory_unavailable")
    assert len(unavailable) == 1
    assert "certificate" in unavailable[0]["detail"]


def test_directory_stopped_mid_test_gives_prompt_407s_and_an_event(
    tmp_path_factory: pytest.TempPathFactory,
    run_proxy: Any,
    internet: tuple[int, list[str]],
    tmp_path: Path,
) -> None:
    """While the directory is down a new sign-in is a 407 within the timeout, with an event;
    one already remembered keeps working; when it is back, sign-in works again."""
    server = start_slapd(tmp_path_factory.mktemp("slapd-stopped"))
    try:
        proxy = run_proxy(*_policy(tmp_path, server, internet[0]))
        assert _get(proxy, "http://www.youtube.com/", "a.brown", PASSWORDS["a.brown"])[0] == "200"
        server.stop()
        for _ in range(3):
            status, seconds = _get(
                proxy, "http://www.youtube.com/", "d.evans", PASSWORDS["d.evans"]
            )
            assert status == "407"
            assert seconds < 8  # timeout_seconds: 2, never a hang
        unavailable = _events(proxy, "signin.directory_unavailable")
        assert len(unavailable) == 1  # one event a minute at most, not one per request
        assert "did not answer" in unavailable[0]["detail"]
        # a.brown's sign-in is remembered: the directory being down does not stop her.
        assert _get(proxy, "http://www.youtube.com/3", "a.brown", PASSWORDS["a.brown"])[0] == "200"
        server.start()
        assert _get(proxy, "http://www.youtube.com/", "d.evans", PASSWORDS["d.evans"])[0] == "403"
    finally:
        server.stop()
