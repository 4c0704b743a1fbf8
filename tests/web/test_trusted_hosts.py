"""The page answers only to the names it is served as (DNS rebinding): a foreign Host gets a
short plain 400 that says what to do; its loopback names, its listen address and the host of
admin.public_url work, and so does the block page's "Ask for an exemption" link to that host.

Real HTTP on 127.0.0.1: curl's --resolve sends a name to 127.0.0.1 exactly as a browser whose
DNS answered 127.0.0.1 would, so "evil.example" below is a rebinding site, not a forged test.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from socialguard.web.trusted_hosts import page_names
from tests.loopback import LOOPBACK, free_port, loopback_internet
from tests.proxy.conftest import start, stop
from tests.web.conftest import APPROVER, PASSWORD, start_admin, token_of

PUBLIC = "sg-admin.practice.test"
EVERY = "0.0.0.0"  # noqa: S104 - a listen address to compare with, never bound


def curl(port: int, name: str, path: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`curl http://NAME:PORT/PATH` with NAME resolved to 127.0.0.1; the headers, then the body."""
    return subprocess.run(
        ["curl", "-sS", "-m", "10", "-i", "--resolve", f"{name}:{port}:{LOOPBACK}",
         *args, f"http://{name}:{port}{path}"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip


def status(response: subprocess.CompletedProcess[str]) -> int:
    assert response.returncode == 0, response.stderr
    return int(response.stdout.split(None, 2)[1])


@pytest.mark.parametrize(
    ("listen", "public_url", "host", "allowed"),
    [
        ("127.0.0.1", None, "127.0.0.1:8090", True),
        ("127.0.0.1", None, "LocalHost.:8090", True),
        ("127.0.0.1", None, "[::1]:8090", True),
        ("127.0.0.1", None, "127.0.0.2", True),  # every loopback address is this machine
        ("127.0.0.1", None, "evil.example:8090", False),
        ("127.0.0.1", None, "10.0.0.5:8090", False),  # not where it listens
        ("127.0.0.1", None, "127.1", False),  # a browser reads it as an address: never a name
        ("127.0.0.1", None, "", False),
        ("127.0.0.1", "https://Gateway.Practice.example:8090/", "gateway.practice.example", True),
        ("192.168.1.10", None, "192.168.1.10:8090", True),
        ("192.168.1.10", None, "localhost:8090", False),  # not listening on loopback
        ("192.168.1.10", "https://gateway:8090", "gateway:8090", True),
        (EVERY, None, "192.168.1.10:8090", True),  # every address: any address literal
        (EVERY, None, "[fe80::1]:8090", True),
        (EVERY, None, "localhost:8090", True),
        (EVERY, None, "gateway:8090", False),  # a name only through admin.public_url
        ("::", "http://gateway:8090", "GATEWAY:8090", True),
    ],
)
def test_the_names_the_page_answers_to(
    listen: str, public_url: str | None, host: str, allowed: bool
) -> None:
    """Loopback names on loopback, the listen address, public_url's host; no other name."""
    assert page_names(listen, public_url).allows(host) is allowed


def test_a_rebinding_name_is_refused_with_what_to_do(run_admin: Any) -> None:
    """A foreign Host is refused before any page: plain 400, no cookie, no sign-in, and it
    tells the Practice Manager to use the address IT gave them."""
    admin = run_admin(admin_extra=f'  public_url: "http://{PUBLIC}:8090"\n')
    for path in ("/sign-in", "/", "/style.css", "/request?ref=SG-0000000000"):
        refused = curl(admin.port, "evil.example", path)
        assert status(refused) == 400, path
        head, body = refused.stdout.split("\n\n", 1)
        assert "content-type: text/plain; charset=utf-8" in head.lower()
        assert "set-cookie" not in head.lower()
        assert "content-security-policy" in head.lower()  # the page's headers on it too
        assert f"address IT gave you (http://{PUBLIC}:8090/)" in body
        assert "admin.public_url" in body
    posted = curl(
        admin.port, "evil.example", "/sign-in", "-d", f"username={APPROVER}&password={PASSWORD}"
    )
    assert status(posted) == 400
    with httpx.Client(base_url=admin.url, timeout=10) as client:  # Host set by hand
        assert client.get("/sign-in", headers={"Host": "evil.example"}).status_code == 400
        assert client.get("/sign-in", headers={"Host": f"{LOOPBACK}:1@evil"}).status_code == 400
    assert admin.events("admin.signed_in") == []
    assert admin.events("admin.signin_failed") == []


def test_the_names_it_is_served_as_work(run_admin: Any) -> None:
    """127.0.0.1, localhost, [::1] and public_url's host reach the page and can sign in."""
    admin = run_admin(admin_extra=f'  public_url: "http://{PUBLIC}:8090"\n')
    for name in (LOOPBACK, "localhost", PUBLIC):
        assert status(curl(admin.port, name, "/sign-in")) == 200, name
    for host in (f"[::1]:{admin.port}", f"{PUBLIC}:8090", f"{PUBLIC.upper()}."):
        with httpx.Client(base_url=admin.url, headers={"Host": host}, timeout=10) as client:
            page = client.get("/sign-in")
            assert page.status_code == 200, host
            form = {"csrf": token_of(page.text), "username": APPROVER, "password": PASSWORD}
            assert client.post("/sign-in", data=form).status_code == 303, host
            assert "EX-" in client.get("/").text
    assert len(admin.events("admin.signed_in")) == 3


def test_the_block_pages_request_link_reaches_the_page(tmp_path: Path) -> None:
    """The block page's "Ask for an exemption" (built from public_url, a name here) opens the
    request form for that block, and the request is taken."""
    admin_port = free_port()
    proxy_dir = tmp_path / "proxy"
    proxy_dir.mkdir()
    admin_dir = tmp_path / "admin"
    admin_dir.mkdir()
    public = f"http://{PUBLIC}:{admin_port}"
    admin = start_admin(
        admin_dir, port=admin_port, proxy_audit=proxy_dir / "audit.jsonl",
        admin_extra=f'  public_url: "{public}"\n',
        extra_policy="devices: {reception-pc-1: 127.0.0.1}\n",
    )  # fmt: skip
    try:
        with loopback_internet() as (internet_port, _seen):
            proxy = start(proxy_dir, "--config", str(admin.policy),
                          "--upstream", f"http://{LOOPBACK}:{internet_port}")  # fmt: skip
            try:
                block = proxy.curl("-H", "Accept: text/html", "http://www.tiktok.com/")
            finally:
                stop(proxy)
        link = re.search(rf'href="{re.escape(public)}(/request\?ref=(SG-[0-9A-Z]{{10}}))"',
                         block.stdout)  # fmt: skip
        assert link, block.stdout
        path, ref = link[1], link[2]
        jar = tmp_path / "cookies"
        form = curl(admin_port, PUBLIC, path, "-c", str(jar))
        assert status(form) == 200
        assert ref in form.stdout
        assert "reception-pc-1" in form.stdout  # bound to the block: the proxy knew the device
        sent = curl(admin_port, PUBLIC, "/request", "-b", str(jar),
                    "--data-urlencode", f"csrf={token_of(form.stdout)}",
                    "--data-urlencode", f"ref={ref}",
                    "--data-urlencode", "purpose=Post the practice's news")  # fmt: skip
        assert status(sent) == 303, sent.stdout
        assert re.search(rf"(?im)^location: /answer\?ref={ref}&sent=1\r?$", sent.stdout)
        assert [e["reference"] for e in admin.events("exemption.requested")] == [ref]
    finally:
        admin.stop()
