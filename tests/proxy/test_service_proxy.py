"""socialguard as a service, through the real `socialguard run`: systemd notifications, SIGHUP,
/healthz, the installed layout from another directory, and accounts made by `users add`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from socialguard.proxy import systemd
from tests.loopback import LOOPBACK, free_port, wait_for_port
from tests.proxy.conftest import SOCIALGUARD, RunningProxy, stop


def receive(sock: socket.socket, want: str, seconds: float = 30.0) -> list[str]:
    """Datagrams until one holds `want` (each a list of KEY=VALUE lines)."""
    sock.settimeout(seconds)
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = sock.recv(4096).decode()
        got.append(message)
        if want in message.split("\n"):
            return got
    raise AssertionError(f"no {want} within {seconds} s; got {got}")


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def status_of(port: int, path: str = "/healthz") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_notify_reaches_an_abstract_and_a_path_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.ready() is False  # outside systemd: nothing, and no error
    name = f"socialguard-test-{os.getpid()}"
    for address, bind in ((f"@{name}", f"\0{name}"), (str(tmp_path / "n"), str(tmp_path / "n"))):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(bind)
            monkeypatch.setenv("NOTIFY_SOCKET", address)
            assert systemd.reloading()
            lines = sock.recv(4096).decode().split("\n")
            assert lines[0] == "RELOADING=1"
            assert lines[1].startswith("MONOTONIC_USEC=")
            assert int(lines[1].split("=")[1]) > 0
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert systemd.stopping() is False  # a missing socket is a warning, never a crash


def test_ready_sighup_reload_and_stopping(run_proxy: Any, tmp_path: Path, internet: Any) -> None:
    """READY=1 once listening; SIGHUP: RELOADING=1, policy.loaded (trigger sighup), READY=1,
    and the proxy goes on answering; SIGTERM: STOPPING=1."""
    notify = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        proxy: RunningProxy = run_proxy(
            "--upstream", f"http://{LOOPBACK}:{internet[0]}", env={"NOTIFY_SOCKET": str(notify)}
        )
        assert any("READY=1" in m for m in receive(sock, "READY=1"))
        for _ in range(2):  # twice: the handler stays installed
            proxy.process.send_signal(signal.SIGHUP)
            got = receive(sock, "READY=1")
            assert got[0].startswith("RELOADING=1\nMONOTONIC_USEC=")
        assert proxy.process.poll() is None, "SIGHUP killed the proxy"
        loaded = [e for e in events(proxy.audit) if e["event"] == "policy.loaded"]
        assert [e["trigger"] for e in loaded] == ["start", "sighup", "sighup"]
        answer = proxy.curl("-o", "/dev/null", "-w", "%{http_code}", "http://www.tiktok.com/")
        assert answer.stdout == "403"
        answer = proxy.curl("-o", "/dev/null", "-w", "%{http_code}", "http://example.org/")
        assert answer.stdout == "200"
        proxy.process.send_signal(signal.SIGTERM)
        receive(sock, "STOPPING=1")
        assert proxy.process.wait(10) == 0


def test_sighup_takes_an_edit_at_once(run_proxy: Any, tmp_path: Path) -> None:
    config = tmp_path / "policy.yaml"
    config.write_text("enforced_categories: [social-networking]\n")
    proxy: RunningProxy = run_proxy("--config", str(config))
    config.write_text("enforced_categories: [social-networking, multimedia-sharing]\n")
    proxy.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        loaded = [e for e in events(proxy.audit) if e["event"] == "policy.loaded"]
        if len(loaded) == 2:
            break
        time.sleep(0.05)
    assert loaded[-1]["trigger"] == "sighup"
    assert loaded[-1]["previous_digest"] != loaded[-1]["policy_digest"]


def test_healthz_turns_503_when_the_audit_folder_goes(run_proxy: Any, tmp_path: Path) -> None:
    """As root, chmod stops nothing: the audit folder is moved away and a plain file put in its
    place, so the log path cannot be written (the proxy's open file is elsewhere now)."""
    metrics = free_port()
    config = tmp_path / "policy.yaml"
    config.write_text(f'metrics: {{listen: "{LOOPBACK}:{metrics}"}}\n')
    logs = tmp_path / "logs"
    proxy: RunningProxy = run_proxy("--config", str(config), "--audit-log", str(logs / "a.jsonl"))
    assert status_of(metrics) == (200, "ok\n")
    assert status_of(metrics, "/metrics")[1].count("socialguard_catalog_services") >= 1
    logs.rename(tmp_path / "logs-moved")
    logs.write_text("not a folder\n")
    code, body = status_of(metrics)
    assert code == 503
    assert "unhealthy: the audit log" in body
    assert "a.jsonl" in body
    logs.unlink()
    (tmp_path / "logs-moved").rename(logs)
    assert status_of(metrics) == (200, "ok\n")
    assert proxy.process.poll() is None


def test_the_installed_layout_from_another_directory(tmp_path: Path) -> None:
    """ROOT/etc/socialguard/policy.yaml through $SOCIALGUARD_CONFIG, started elsewhere: the
    audit log and the CA land in ROOT/var/log and ROOT/var/lib, nothing in the directory it was
    started from, and it says which files it uses."""
    root = tmp_path / "root"
    etc = root / "etc/socialguard"
    (etc / "allowlists").mkdir(parents=True)
    shutil.copy(Path(__file__).parents[2] / "allowlists/authorisations.yaml", etc / "allowlists")
    (etc / "policy.yaml").write_text("practice: {name: Test Surgery}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    log = tmp_path / "run.log"
    env = {**os.environ, "SOCIALGUARD_CONFIG": str(etc / "policy.yaml")}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*SOCIALGUARD, "run", "--listen", f"{LOOPBACK}:{port}"],
            cwd=elsewhere, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        assert wait_for_port(port, 30), log.read_text()
        blocked = subprocess.run(
            ["curl", "-sS", "-m", "10", "-x", f"http://{LOOPBACK}:{port}", "-o", "/dev/null",
             "-w", "%{http_code}", "http://www.tiktok.com/"],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        assert blocked.stdout == "403"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
    audit = root / "var/log/socialguard/audit.jsonl"
    assert "access.blocked" in [e["event"] for e in events(audit)]
    assert (root / "var/lib/socialguard/ca/mitmproxy-ca.pem").exists()
    assert list(elsewhere.iterdir()) == []
    said = log.read_text()
    assert f"policy {etc / 'policy.yaml'} (from SOCIALGUARD_CONFIG; installed layout)" in said
    assert f"authorisations {etc / 'allowlists/authorisations.yaml'}" in said
    assert "making a NEW one there" in said
    assert str(root / "var/lib/socialguard/ca") in said


def test_no_policy_file_anywhere_is_said_loudly(tmp_path: Path) -> None:
    """Started in an empty directory with no policy file anywhere: it runs on the embedded
    defaults and says so plainly, naming the directory its files go to."""
    port = free_port()
    log = tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if k != "SOCIALGUARD_CONFIG"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*SOCIALGUARD, "run", "--listen", f"{LOOPBACK}:{port}"],
            cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        assert wait_for_port(port, 30), log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
    said = log.read_text()
    assert "WARNING: no policy file was found" in said
    assert str(tmp_path) in said
    assert "making a NEW one there" in said


def test_a_user_added_by_users_add_signs_in(run_proxy: Any, tmp_path: Path, internet: Any) -> None:
    path = tmp_path / "htpasswd"
    added = subprocess.run(
        [*SOCIALGUARD, "users", "add", "erin", "--htpasswd", str(path)],
        input="Str0ng-Passw0rd\n", capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    proxy: RunningProxy = run_proxy(
        "--proxyauth", f"@{path}", "--upstream", f"http://{LOOPBACK}:{internet[0]}"
    )
    url = "http://example.org/"
    signed_in = [
        "curl",
        "-sS",
        "-m",
        "10",
        "-x",
        proxy.url,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ]
    ok = subprocess.run([*signed_in, "-U", "erin:Str0ng-Passw0rd", url], capture_output=True,
                        text=True, timeout=20, check=False)  # fmt: skip
    assert ok.stdout == "200"
    wrong = subprocess.run([*signed_in, "-U", "erin:wrong-password", url], capture_output=True,
                           text=True, timeout=20, check=False)  # fmt: skip
    assert wrong.stdout == "407"
    blocked = subprocess.run([*signed_in, "-U", "erin:Str0ng-Passw0rd", "http://www.tiktok.com/"],
                             capture_output=True, text=True, timeout=20, check=False)  # fmt: skip
    assert blocked.stdout == "403"
    # A user added while it runs can sign in: the proxy follows the file (and SIGHUP is safe).
    more = subprocess.run(
        [*SOCIALGUARD, "users", "add", "frank", "--htpasswd", str(path)],
        input="Fr4nk-Passw0rd\n", capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert more.returncode == 0, more.stderr
    proxy.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while True:
        frank = subprocess.run([*signed_in, "-U", "frank:Fr4nk-Passw0rd", url],
                               capture_output=True, text=True, timeout=20, check=False)  # fmt: skip
        if frank.stdout == "200" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert frank.stdout == "200"
    access = [e for e in events(proxy.audit) if e["event"] == "access.blocked"]
    assert access
    assert access[-1]["user"] == "erin"
    stop(proxy)
