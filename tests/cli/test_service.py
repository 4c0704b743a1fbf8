"""The service commands without a proxy: validate with nothing to check, users, pac, status."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import bcrypt
import pacparser
import pytest
from click.testing import CliRunner

from socialguard.cli.app import main
from socialguard.files import htpasswd


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOCIALGUARD_CONFIG", raising=False)
    return tmp_path


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_validate_with_no_policy_file_anywhere_fails(nowhere: Path) -> None:
    code, out, err = invoke("validate")
    assert code == 1
    assert "valid" not in out
    assert "no policy file to check" in err
    assert "SOCIALGUARD_CONFIG" in err


def test_validate_a_missing_named_file_fails(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = invoke("validate", "--config", "absent.yaml")
    assert code == 1
    assert "absent.yaml" in err
    monkeypatch.setenv("SOCIALGUARD_CONFIG", str(nowhere / "gone.yaml"))
    code, _, err = invoke("validate")
    assert code == 1
    assert "gone.yaml" in err
    assert "SOCIALGUARD_CONFIG" in err


def test_validate_names_the_files_it_checked(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = nowhere / "etc"
    etc.mkdir()
    (etc / "list.yaml").write_text("approvers: [pm]\nexemptions: []\n")
    (etc / "policy.yaml").write_text("authorisations: list.yaml\n")
    monkeypatch.setenv("SOCIALGUARD_CONFIG", str(etc / "policy.yaml"))
    code, out, _ = invoke("validate")
    assert code == 0
    assert f"valid: {etc / 'policy.yaml'}, {etc / 'list.yaml'}" in out


def test_users_add_passwd_list_remove(nowhere: Path) -> None:
    path = nowhere / "htpasswd"
    code, out, err = invoke("users", "add", "erin", "--htpasswd", str(path), input="Str0ng-Pass\n")
    assert code == 0, err
    assert f"added erin to {path}" in out
    users = htpasswd.read(path)
    assert bcrypt.checkpw(b"Str0ng-Pass", users["erin"].encode())
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    code, _, err = invoke("users", "add", "erin", "--htpasswd", str(path), input="Another1\n")
    assert code == 1
    assert "already exists" in err
    code, _, _ = invoke("users", "add", "sam", "--htpasswd", str(path), input="Password2\n")
    assert code == 0
    code, _, _ = invoke("users", "passwd", "erin", "--htpasswd", str(path), input="N3w-Passwd\n")
    assert code == 0
    assert bcrypt.checkpw(b"N3w-Passwd", htpasswd.read(path)["erin"].encode())
    code, out, _ = invoke("users", "list", "--htpasswd", str(path))
    assert (code, out) == (0, "erin\nsam\n")
    code, _, _ = invoke("users", "remove", "erin", "--htpasswd", str(path))
    assert code == 0
    assert list(htpasswd.read(path)) == ["sam"]
    code, _, err = invoke("users", "remove", "erin", "--htpasswd", str(path))
    assert code == 1
    assert "no user 'erin'" in err
    assert not [p for p in os.listdir(nowhere) if p.startswith(".htpasswd.") and "lock" not in p]


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("erin", "short\n", "too short"),
        ("bad:name", "Long-enough1\n", "not a user name"),
        ("erin", "x" * 80 + "\n", "too long"),
    ],
)
def test_users_refuses_bad_input(nowhere: Path, name: str, password: str, message: str) -> None:
    code, _, err = invoke("users", "add", name, "--htpasswd", "h", input=password)
    assert code == 1
    assert message in err
    assert not (nowhere / "h").exists()


def test_users_default_file_is_the_policys_proxyauth(nowhere: Path) -> None:
    (nowhere / "config").mkdir()
    (nowhere / "config" / "policy.yaml").write_text("identity: {proxyauth: '@auth/htpasswd'}\n")
    (nowhere / "auth").mkdir()
    code, _out, err = invoke("users", "add", "erin", input="Str0ng-Pass\n")
    assert code == 0, err
    assert "erin" in htpasswd.read(nowhere / "auth/htpasswd")


URLS = [
    ("https://www.facebook.com/", "www.facebook.com", "PROXY 10.0.0.1:8080"),
    ("http://www.tiktok.com/x", "www.tiktok.com", "PROXY 10.0.0.1:8080"),
    ("https://intranet.mysurgery.nhs.uk/", "intranet.mysurgery.nhs.uk", "DIRECT"),
    ("https://mysurgery.nhs.uk/", "mysurgery.nhs.uk", "DIRECT"),
    ("https://notmysurgery.nhs.uk.evil.example/", "notmysurgery.nhs.uk.evil.example", "PROXY"),
    ("https://mail.surgery-mail.example/", "mail.surgery-mail.example", "DIRECT"),
    ("http://printer/", "printer", "DIRECT"),
    ("http://192.168.1.20/", "192.168.1.20", "DIRECT"),
    ("http://10.1.2.3:8443/", "10.1.2.3", "DIRECT"),
    ("http://172.20.0.1/", "172.20.0.1", "DIRECT"),
    ("http://172.32.0.1/", "172.32.0.1", "PROXY 10.0.0.1:8080"),
    ("http://8.8.8.8/", "8.8.8.8", "PROXY 10.0.0.1:8080"),
    ("https://www.nhs.uk/", "www.nhs.uk", "PROXY 10.0.0.1:8080"),
]


def _evaluate(pac: str, tmp: Path, cases: list[tuple[str, str, str]]) -> list[str]:
    path = tmp / "proxy.pac"
    path.write_text(pac)
    pacparser.init()
    try:
        pacparser.parse_pac_file(str(path))
        return [pacparser.find_proxy(url, host) for url, host, _ in cases]
    finally:
        pacparser.cleanup()


def test_pac_sends_the_practice_and_the_lan_direct_and_the_rest_to_the_proxy(
    nowhere: Path,
) -> None:
    """Evaluated by pacparser (a real PAC engine) for a table of URLs."""
    (nowhere / "config").mkdir()
    (nowhere / "config" / "policy.yaml").write_text(
        "practice: {domains: [mysurgery.nhs.uk]}\nemail_domains: [surgery-mail.example]\n"
    )
    code, pac, err = invoke("pac", "--proxy", "10.0.0.1:8080")
    assert code == 0, err
    got = _evaluate(pac, nowhere, URLS)
    for (url, _, want), answer in zip(URLS, got, strict=True):
        assert answer.startswith(want), (url, answer)
        assert "DIRECT" not in answer or want == "DIRECT", (url, answer)


def test_pac_sends_never_block_direct_only_when_asked(nowhere: Path) -> None:
    cases = [("https://www.nhs.uk/", "www.nhs.uk", ""), ("https://x.nhs.net/", "x.nhs.net", "")]
    _, plain, _ = invoke("pac", "--proxy", "gw.example:3128")
    assert _evaluate(plain, nowhere, cases) == ["PROXY gw.example:3128"] * 2
    code, direct, _ = invoke("pac", "--proxy", "gw.example:3128", "--direct-never-block")
    assert code == 0
    assert _evaluate(direct, nowhere, cases) == ["DIRECT", "DIRECT"]


@pytest.mark.parametrize("proxy", ["nonsense", "10.0.0.1", 'evil";alert(1);"x:80'])
def test_pac_refuses_a_proxy_that_is_not_host_port(nowhere: Path, proxy: str) -> None:
    code, _, err = invoke("pac", "--proxy", proxy)
    assert code == 2
    assert "--proxy" in err


def test_status_reads_the_files_and_the_log_without_a_proxy(nowhere: Path) -> None:
    (nowhere / "config").mkdir()
    (nowhere / "allowlists").mkdir()
    (nowhere / "config" / "policy.yaml").write_text("listen: 127.0.0.1:1\n")
    today = dt.datetime.now(dt.UTC).date()
    (nowhere / "allowlists" / "authorisations.yaml").write_text(
        "approvers: [pm]\nexemptions:\n"
        + "".join(
            f"  - id: EX-{n}\n    who: {{user: j.smith}}\n    services: [facebook]\n"
            f"    purpose: Maintain the practice Facebook page\n    approved_by: pm\n"
            f"    approved_on: {today - dt.timedelta(days=2)}\n"
            f"    expires: {today + dt.timedelta(days=days)}\n"
            for n, days in ((1, 200), (2, 10))
        )
    )
    code, out, err = invoke("status")
    assert code == 0, err
    assert "Policy file: config/policy.yaml (the checkout's config/policy.yaml)" in out
    assert "127.0.0.1:1 — nothing is listening there" in out
    assert "Audit log: var/audit.jsonl" in out
    assert "none yet" in out
    assert "no policy.loaded in the audit log" in out
    assert "allowlists/authorisations.yaml" in out
    assert "Exemptions: 2 active, 1 expiring within 30 days" in out
    assert "EX-2 (user j.smith) expires" in out
    assert "none in var/ca yet" in out
    assert "Last rejected edit: none recorded" in out
    assert "Not known without asking the proxy" in out
