"""The running proxy follows the authorisation list: through the real `socialguard run`, driven
by the `socialguard exemptions` command and by hand edits, with curl and httpx on loopback.
"""

from __future__ import annotations

import datetime as dt
import ssl
import subprocess
import threading
import time
import zoneinfo
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.loopback import LOOPBACK, ORIGIN_BODY
from tests.proxy.conftest import PASSWORD, SOCIALGUARD, RunningProxy, stop

LONDON = zoneinfo.ZoneInfo("Europe/London")
TODAY = dt.datetime.now(LONDON).date()
# The issue promises 2 seconds; the acceptance check allows 3.
WITHIN = 3.0

HEADER = """\
# Authorisations for business use of social media.
# Kept by the Practice Manager; reviewed every year.
approvers: [practice.manager, deputy.manager]   # who may approve
exemptions:
"""


def exemption(ident: str, user: str, service: str, expires: object, **extra: str) -> str:
    lines = [
        f"  - id: {ident}",
        f"    who: {{user: {user}}}",
        f"    services: [{service}]",
        "    purpose: Maintain the practice page on this service",
        "    approved_by: practice.manager",
        f"    approved_on: {TODAY - dt.timedelta(days=1)}",
        f"    expires: {expires}",
    ]
    lines += [f"    {key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


GOOD = HEADER + exemption("EX-2026-001", "j.smith", "facebook", TODAY + dt.timedelta(days=200))


@pytest.fixture
def listed(tmp_path: Path) -> Path:
    path = tmp_path / "authorisations.yaml"
    path.write_text(GOOD)
    return path


@pytest.fixture
def proxy(run_proxy: Any, listed: Path, htpasswd: Path, internet: Any) -> RunningProxy:
    """The proxy with sign-in, the list above, and the loopback internet upstream."""
    port, _seen = internet
    return run_proxy(
        "--authorisations", str(listed),
        "--proxyauth", f"@{htpasswd}",
        "--upstream", f"http://{LOOPBACK}:{port}",
    )  # fmt: skip


def code(proxy: RunningProxy, url: str, user: str) -> str:
    return proxy.curl("-o", "/dev/null", "-w", "%{http_code}", url, user=user).stdout


def wait_for_code(proxy: RunningProxy, url: str, user: str, want: str) -> float:
    """Seconds until `url` answers `want` for `user`; fails after WITHIN seconds."""
    start = time.monotonic()
    while True:
        got = code(proxy, url, user)
        elapsed = time.monotonic() - start
        if got == want:
            return elapsed
        assert elapsed < WITHIN, f"still {got} after {elapsed:.1f}s (wanted {want})"
        time.sleep(0.05)


def wait_for_event(proxy: RunningProxy, name: str, count: int = 1) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WITHIN + 2
    while True:
        found = [e for e in proxy.events() if e["event"] == name]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def exemptions_cli(listed: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SOCIALGUARD, "exemptions", *args, "--authorisations", str(listed)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def grant(listed: Path, user: str, service: str) -> subprocess.CompletedProcess[str]:
    return exemptions_cli(
        listed,
        "grant",
        "--user", user,
        "--service", service,
        "--purpose", f"Post for the practice on {service}",
        "--approved-by", "practice.manager",
        "--until", str(TODAY + dt.timedelta(days=90)),
    )  # fmt: skip


def test_a_grant_takes_effect_within_seconds_and_is_recorded(
    proxy: RunningProxy, listed: Path
) -> None:
    """The CLI's grant reaches the running proxy without a restart, and the log says who did it."""
    assert code(proxy, "http://www.linkedin.com/", "m.patel") == "403"
    (started,) = wait_for_event(proxy, "policy.loaded")
    result = grant(listed, "m.patel", "linkedin")
    assert result.returncode == 0, result.stderr
    assert wait_for_code(proxy, "http://www.linkedin.com/", "m.patel", "200") < WITHIN
    loaded = wait_for_event(proxy, "policy.loaded", 2)[-1]
    assert loaded["policy_digest"] != started["policy_digest"]
    assert loaded["previous_digest"] == started["policy_digest"]
    (granted,) = wait_for_event(proxy, "exemption.granted")
    assert granted["exemption_id"] == "EX-2026-002"
    assert (granted["who"], granted["user"], granted["what"]) == (
        "user m.patel",
        "m.patel",
        ["linkedin"],
    )
    assert granted["approved_by"] == "practice.manager"
    assert granted["purpose"] == "Post for the practice on linkedin"
    assert granted["expires"].startswith(str(TODAY + dt.timedelta(days=91)))
    assert granted["policy_digest"] == loaded["policy_digest"]
    exception = [e for e in proxy.events() if e["event"] == "access.exception"][-1]
    assert (exception["user"], exception["exemption_id"]) == ("m.patel", "EX-2026-002")


def test_revoke_and_renew_are_applied_and_recorded(proxy: RunningProxy, listed: Path) -> None:
    """A revocation blocks again within seconds; both changes become events with their details."""
    assert code(proxy, "http://www.facebook.com/", "j.smith") == "200"
    until = str(TODAY + dt.timedelta(days=300))
    renewed = exemptions_cli(
        listed, "renew", "EX-2026-001", "--until", until, "--approved-by", "deputy.manager"
    )
    assert renewed.returncode == 0, renewed.stderr
    (event,) = wait_for_event(proxy, "exemption.renewed")
    assert (event["approved_by"], event["previous_approved_by"]) == (
        "deputy.manager",
        "practice.manager",
    )
    revoked = exemptions_cli(
        listed, "revoke", "EX-2026-001", "--reason", "Page handed over", "--by", "practice.manager"
    )
    assert revoked.returncode == 0, revoked.stderr
    assert wait_for_code(proxy, "http://www.facebook.com/", "j.smith", "403") < WITHIN
    (event,) = wait_for_event(proxy, "exemption.revoked")
    assert (event["exemption_id"], event["revoked_reason"]) == ("EX-2026-001", "Page handed over")
    assert "EX-2026-001" in listed.read_text()


@pytest.mark.parametrize(
    ("broken", "line", "problem"),
    [
        ("exemptions: [ {id: broken\n", 2, "not valid YAML"),
        (GOOD.replace("services: [facebook]", "services: [facebok]"), 7, "unknown service"),
        (GOOD.replace("approved_by: practice.manager", "approved_by: j.smith"), 9, "approvers"),
    ],
)
def test_an_invalid_file_keeps_the_last_good_policy(
    proxy: RunningProxy, listed: Path, broken: str, line: int, problem: str
) -> None:
    """A bad edit is rejected with file, line and problem; blocks and exemptions stay as before."""
    assert code(proxy, "http://www.facebook.com/", "j.smith") == "200"
    (started,) = wait_for_event(proxy, "policy.loaded")
    listed.write_text(broken)
    (rejected,) = wait_for_event(proxy, "policy.rejected")
    assert rejected["errors"][0]["file"] == str(listed)
    assert rejected["errors"][0]["line"] == line
    assert problem in rejected["errors"][0]["problem"]
    assert rejected["policy_digest"] == started["policy_digest"]
    assert "the last good policy stays in force" in rejected["detail"]
    # The exempted user stays exempted; everyone else stays blocked.
    assert code(proxy, "http://www.facebook.com/", "j.smith") == "200"
    assert code(proxy, "http://www.facebook.com/", "a.nother") == "403"
    assert [e["event"] for e in proxy.events()].count("policy.loaded") == 1
    # Put right, it is taken again.
    listed.write_text(GOOD)
    back = wait_for_event(proxy, "policy.loaded", 2)
    assert len(back) == 2
    assert back[-1]["policy_digest"] == started["policy_digest"]


def test_reload_under_live_traffic_fails_no_request(
    proxy: RunningProxy, listed: Path, origin: Any
) -> None:
    """Requests on kept-alive connections and tunnels carry on while the list changes."""
    port, cert = origin
    stop = threading.Event()
    answers: list[tuple[str, int | str]] = []
    sent_at: list[float] = []  # when each answered request was sent (monotonic)

    def traffic() -> None:
        auth_proxy = f"http://m.patel:{PASSWORD}@{LOOPBACK}:{proxy.port}"
        verify = ssl.create_default_context(cafile=cert)
        with httpx.Client(proxy=auth_proxy, verify=verify, timeout=10) as client:
            while not stop.is_set():
                for url in (
                    "http://news.example.org/",
                    "http://www.linkedin.com/",
                    f"https://localhost:{port}/",
                ):
                    sent = time.monotonic()
                    try:
                        response = client.get(url)
                    except httpx.HTTPError as error:
                        answers.append((url, repr(error)))
                    else:
                        body_ok = not url.startswith("https") or response.content == ORIGIN_BODY
                        answers.append((url, response.status_code if body_ok else "bad body"))
                    sent_at.append(sent)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        time.sleep(0.5)
        result = grant(listed, "m.patel", "linkedin")
        assert result.returncode == 0, result.stderr
        wait_for_event(proxy, "exemption.granted")
        time.sleep(0.5)
        revoked = exemptions_cli(
            listed, "revoke", "EX-2026-002", "--reason", "Post is up", "--by", "practice.manager"
        )
        assert revoked.returncode == 0, revoked.stderr
        assert wait_for_event(proxy, "exemption.revoked")
        revoked_seen = time.monotonic()
        # On a loaded machine one round of three requests can outlast a fixed sleep: wait
        # (bounded) until LinkedIn has been asked at least twice since the revocation was logged.
        deadline = revoked_seen + 20
        while time.monotonic() < deadline:
            after = [
                a
                for (u, a), t in zip(answers, sent_at, strict=False)
                if "linkedin" in u and t > revoked_seen
            ]
            if len(after) >= 2:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(30)
    failures = [
        (url, answer)
        for url, answer in answers
        if answer not in ((200,) if "linkedin" not in url else (200, 403))
    ]
    assert failures == []
    linkedin = [answer for url, answer in answers if "linkedin" in url]
    assert 200 in linkedin  # the grant was seen on the live connection
    # and so was the revocation: every LinkedIn request sent after it was logged is refused.
    after = [
        a
        for (u, a), t in zip(answers, sent_at, strict=True)
        if "linkedin" in u and t > revoked_seen
    ]
    assert len(after) >= 2
    assert set(after) == {403}
    assert len(answers) > 30


def test_concurrent_grants_while_the_proxy_reloads(proxy: RunningProxy, listed: Path) -> None:
    """Grants started at the same moment each get their own id; the proxy takes them all."""
    users = ["j.smith", "k.jones", "a.nother", "m.patel"]
    services = ["linkedin", "youtube", "instagram", "tiktok", "reddit"]
    commands = [
        [
            *SOCIALGUARD, "exemptions", "grant", "--authorisations", str(listed),
            "--user", users[i % len(users)], "--service", services[i],
            "--purpose", f"Run the practice account on {services[i]}",
            "--approved-by", "practice.manager", "--for", "8h",
        ]
        for i in range(len(services))
    ]  # fmt: skip
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for command in commands
    ]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [p.returncode for p in processes] == [0] * len(processes), outputs
    granted = wait_for_event(proxy, "exemption.granted", len(services))
    ids = {e["exemption_id"] for e in granted}
    assert len(ids) == len(services)
    assert all(i.startswith(f"EX-{TODAY.year}-") and i != "EX-2026-001" for i in ids)
    assert sorted(e["what"][0] for e in granted) == sorted(services)
    assert [e for e in proxy.events() if e["event"] == "policy.rejected"] == []
    assert code(proxy, "http://www.tiktok.com/", users[3]) == "200"


def test_an_exemption_stops_at_its_expiry_without_a_reload(
    run_proxy: Any, tmp_path: Path, htpasswd: Path, internet: Any
) -> None:
    """An exemption ending a few seconds from now allows until then and blocks from then on."""
    port, _seen = internet
    ends = (dt.datetime.now(LONDON) + dt.timedelta(seconds=8)).replace(microsecond=0)
    path = tmp_path / "short.yaml"
    path.write_text(HEADER + exemption("EX-2026-009", "k.jones", "facebook", ends.isoformat(" ")))
    proxy = run_proxy(
        "--authorisations", str(path),
        "--proxyauth", f"@{htpasswd}",
        "--upstream", f"http://{LOOPBACK}:{port}",
    )  # fmt: skip
    assert dt.datetime.now(LONDON) < ends, "the proxy took too long to start for this test"
    assert code(proxy, "http://www.facebook.com/", "k.jones") == "200"
    while dt.datetime.now(LONDON) < ends:
        time.sleep(0.1)
    result = proxy.curl("http://www.facebook.com/", user="k.jones")
    assert f"EX-2026-009 expired on {ends.day} {ends:%B %Y %H:%M}" in result.stdout
    blocked = [e for e in proxy.events() if e["event"] != "access.exception"]
    assert blocked[-1]["reason"] == "exemption_expired"
    assert [e["event"] for e in blocked].count("policy.loaded") == 1  # no reload was needed


def test_changes_made_while_the_proxy_was_stopped_are_recorded_when_it_starts(
    run_proxy: Any, listed: Path, htpasswd: Path, internet: Any
) -> None:
    """Stop the proxy, grant and revoke with the CLI, start it again on the same audit log: the
    log shows who authorised what, as if the proxy had been running."""
    port, _seen = internet
    args = (
        "--authorisations", str(listed),
        "--proxyauth", f"@{htpasswd}",
        "--upstream", f"http://{LOOPBACK}:{port}",
    )  # fmt: skip
    first = run_proxy(*args)
    (started,) = wait_for_event(first, "policy.loaded")
    stop(first)
    assert grant(listed, "m.patel", "linkedin").returncode == 0
    revoked = exemptions_cli(
        listed, "revoke", "EX-2026-001", "--reason", "Page handed over", "--by", "practice.manager"
    )
    assert revoked.returncode == 0, revoked.stderr
    second = run_proxy(*args, "--audit-log", str(first.audit))
    assert code(second, "http://www.linkedin.com/", "m.patel") == "200"
    assert code(second, "http://www.facebook.com/", "j.smith") == "403"
    events = first.events()  # the log both proxies wrote
    loaded = [e for e in events if e["event"] == "policy.loaded"]
    assert len(loaded) == 2
    assert loaded[1]["previous_digest"] == started["policy_digest"]
    after = events[events.index(loaded[1]) + 1 :]
    changes = [(e["event"], e["exemption_id"]) for e in after if e["event"].startswith("exem")]
    assert changes == [("exemption.revoked", "EX-2026-001"), ("exemption.granted", "EX-2026-002")]
    granted = after[[e["event"] for e in after].index("exemption.granted")]
    assert (granted["who"], granted["what"], granted["approved_by"]) == (
        "user m.patel",
        ["linkedin"],
        "practice.manager",
    )
    assert granted["policy_digest"] == loaded[1]["policy_digest"]
    assert granted["trigger"] == "start"
