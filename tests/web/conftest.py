"""Fixtures that run the real page (`socialguard admin` as a subprocess) on loopback, and a
browser-like httpx client that signs in the way a person would: it reads the form's token."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import bcrypt
import httpx
import pytest

from socialguard.audit.log import AuditLog
from tests.loopback import LOOPBACK, free_port, terminate, wait_for_port

SOCIALGUARD = [sys.executable, "-m", "socialguard"]
PASSWORD = "Good-Passw0rd"
APPROVER = "practice.manager"
TOKEN = re.compile(r'name="csrf" value="([^"]*)"')


def today() -> dt.date:
    """The practice's day (Europe/London, the default time zone)."""
    return dt.datetime.now(ZoneInfo("Europe/London")).date()


def authorisations_text(on: dt.date) -> str:
    """A list with one exemption ending in 20 days (so marked) and one a year old (review)."""
    return f"""\
# kept by the Practice Manager
approvers: [practice.manager, d.partner]

exemptions:
  # the practice's Facebook page
  - id: EX-{on.year}-001
    who: {{user: j.smith}}
    services: [facebook]
    purpose: Keep the practice's Facebook page up to date
    approved_by: practice.manager
    approved_on: {on - dt.timedelta(days=10)}
    expires: {on + dt.timedelta(days=20)}
  - id: EX-{on.year}-002
    who: {{user: k.jones}}
    services: [linkedin]
    purpose: Recruitment adverts
    approved_by: d.partner
    approved_on: {on - dt.timedelta(days=366)}
    expires: {on}
"""


@dataclass
class RunningAdmin:
    """A `socialguard admin` process, its files and where it listens."""

    port: int
    process: subprocess.Popen[bytes]
    tmp: Path
    policy: Path
    authorisations: Path
    proxy_audit: Path
    admin_audit: Path
    log: Path
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        lines = self.admin_audit.read_text().splitlines() if self.admin_audit.exists() else []
        found = [json.loads(line) for line in lines if line.strip()]
        return [e for e in found if name is None or e["event"] == name]

    def client(self) -> httpx.Client:
        """A client of its own (cookies included), closed when the page is stopped."""
        client = httpx.Client(base_url=self.url, timeout=10, follow_redirects=False)
        self.clients.append(client)
        return client

    def sign_in(
        self, client: httpx.Client, user: str = APPROVER, password: str = PASSWORD
    ) -> httpx.Response:
        page = client.get("/sign-in")
        return client.post(
            "/sign-in", data={"csrf": token_of(page.text), "username": user, "password": password}
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SOCIALGUARD, *args], capture_output=True, text=True, timeout=60, check=False,
            cwd=self.tmp,
        )  # fmt: skip

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        terminate(self.process)


def token_of(html: str) -> str:
    match = TOKEN.search(html)
    assert match, f"no form token on the page: {html[:500]}"
    return match[1]


def write_htpasswd(path: Path) -> None:
    lines = []
    for user in (APPROVER, "d.partner", "r.clerk"):
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        lines.append(f"{user}:{hashed}\n")
    path.write_text("".join(lines))


def record_blocks(audit: Path, *blocks: dict[str, Any]) -> list[str]:
    """Blocks written by the proxy's own audit writer, as `socialguard run` writes them."""
    log = AuditLog(audit)
    try:
        refs = []
        for fields in blocks:
            event = {
                "client_ip": "127.0.0.1", "user": None, "device": None, "zone": "practice",
                "host": "www.facebook.com", "service": "facebook",
                "category": "social-networking", "reason": "not_authorised",
                "exemption_id": None, "purpose": None, "policy_digest": "test", "via": "http",
            }  # fmt: skip
            event.update(fields)
            name = str(event.pop("event", "access.blocked"))
            refs.append(str(log.record(name, event)["id"]))
        return refs
    finally:
        log.close()


def start_admin(
    tmp: Path, *, extra_policy: str = "", admin_extra: str = "", host: str = LOOPBACK,
    authorisations: str | None = None, proxy_audit: Path | None = None, port: int | None = None,
) -> RunningAdmin:  # fmt: skip
    """`socialguard admin` in `tmp`; `admin_extra` is added under admin:, `extra_policy` after."""
    port = port or free_port()
    htpasswd = tmp / "htpasswd"
    write_htpasswd(htpasswd)
    audit = proxy_audit or tmp / "var" / "audit.jsonl"
    policy = tmp / "policy.yaml"
    policy.write_text(
        f'admin:\n  listen: "{host}:{port}"\n  htpasswd: {htpasswd}\n{admin_extra}'
        f"audit:\n  path: {audit}\n{extra_policy}"
    )
    auth = tmp / "authorisations.yaml"
    if not auth.exists():
        auth.write_text(authorisations or authorisations_text(today()))
    log = tmp / "admin.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*SOCIALGUARD, "admin", "--config", str(policy), "--authorisations", str(auth)],
            stdout=output, stderr=subprocess.STDOUT, cwd=tmp, env=dict(os.environ),
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while not wait_for_port(port, 0.2) and process.poll() is None and time.monotonic() < deadline:
        pass
    if process.poll() is not None or not wait_for_port(port, 0.5):
        process.kill()
        raise AssertionError(f"socialguard admin did not listen: {log.read_text()[-2000:]}")
    return RunningAdmin(
        port=port, process=process, tmp=tmp, policy=policy, authorisations=auth,
        proxy_audit=audit, admin_audit=audit.parent / "admin" / "admin-audit.jsonl", log=log,
    )  # fmt: skip


@pytest.fixture
def run_admin(tmp_path: Path) -> Iterator[Any]:
    """Start `socialguard admin` (each in its own folder); all are stopped after the test."""
    started: list[RunningAdmin] = []

    def _start(**kwargs: Any) -> RunningAdmin:
        directory = tmp_path / f"admin{len(started)}"
        directory.mkdir()
        admin = start_admin(directory, **kwargs)
        started.append(admin)
        return admin

    yield _start
    for admin in started:
        admin.stop()


def wait_until(check: Any, seconds: float = 5.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)
