"""deploy/rsyslog: two real rsyslogd on loopback, a gateway and a centre, each running the
shipped configuration (RELP over TLS, disk-assisted queue). A real `socialguard run` writes the
log. The centre's copy follows a daily rotation and a restart of the centre, `socialguard audit
verify` holds on it, the chain head arrives beside it, and a gateway log rewritten afterwards,
even by someone holding the HMAC key, is caught at the centre. A hub's chains (`run --workers
N`: one per worker) each arrive in a file of their own, with a head per chain.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from socialguard.audit.files import worker_path
from socialguard.audit.log import AuditLog, AuditOptions
from tests.deploy.conftest import DEPLOY, tool
from tests.loopback import LOOPBACK, free_port, self_signed, terminate, wait_for_port
from tests.proxy.conftest import SOCIALGUARD, RunningProxy, start, stop

RSYSLOG = DEPLOY / "rsyslog"
CENTRAL_LOGGING = DEPLOY.parent / "docs" / "CENTRAL-LOGGING.md"
# The tools the scripts call (socialguard, python3) from this test's environment.
TOOLS_ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
SITE = "riverside"
MAC_FIELD = b',"mac":"'


@dataclass
class Rsyslogd:
    """One rsyslogd in the foreground with its own configuration, pid file and work folder."""

    name: str
    config: Path
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        with (self.directory / "rsyslogd.log").open("ab") as log:
            self.process = subprocess.Popen(
                [tool("rsyslogd"), "-n", "-f", str(self.config),
                 "-i", str(self.directory / "rsyslogd.pid")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, grace=20)

    def log(self) -> str:
        return (self.directory / "rsyslogd.log").read_text(errors="replace")[-3000:]


def rsyslogd(name: str, source: Path, tmp: Path, replacements: dict[str, str]) -> Rsyslogd:
    """An rsyslogd running the shipped file with its site values replaced (each must still be
    there), included as /etc/rsyslog.d is, after the work directory Debian's rsyslog.conf sets."""
    directory = tmp / name
    (directory / "work").mkdir(parents=True)
    text = source.read_text()
    for old, new in replacements.items():
        assert old in text, f"{source.name} no longer has {old!r}"
        text = text.replace(old, new)
    (directory / source.name).write_text(text)
    config = directory / "rsyslog.conf"
    config.write_text(
        f'global(workDirectory="{directory / "work"}")\ninclude(file="{directory / source.name}")\n'
    )
    return Rsyslogd(name=name, config=config, directory=directory)


@dataclass
class Relay:
    """A gateway's log folder shipped to a centre: both rsyslogd, and where things land."""

    gateway: Rsyslogd
    centre: Rsyslogd
    port: int
    logs: Path  # the gateway's /var/log/socialguard
    copy: Path  # the centre's copy of this site's audit.jsonl
    heads: Path  # the centre's copy of this site's heads.log

    def received(self) -> bytes:
        return self.copy.read_bytes() if self.copy.exists() else b""

    def wait_until(self, check: Callable[[], bool], what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not check():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {s.name}:\n{s.log()}" for s in (self.centre, self.gateway))
                raise AssertionError(f"{what} did not happen within {seconds} s\n{logs}")
            time.sleep(0.1)

    def start_centre(self) -> None:
        self.centre.start()
        self.wait_until(lambda: wait_for_port(self.port, 0.1), "the centre listening")


def build_relay(tmp_path: Path, gateway_changes: dict[str, str] | None = None) -> Relay:
    """deploy/rsyslog's gateway.conf and centre.conf, made ready for loopback (not started);
    `gateway_changes` changes the gateway's file further (a gateway someone has changed)."""
    tool("rsyslogd")
    tls = tmp_path / "tls"
    tls.mkdir()
    cert, cert_key = self_signed(tls)  # one certificate, for "localhost"; both ends trust it
    for name in ("ca.pem", "gateway.pem", "centre.pem"):
        (tls / name).write_bytes(cert.read_bytes())
    for name in ("gateway.key", "centre.key"):
        (tls / name).write_bytes(cert_key.read_bytes())
    table = tmp_path / "sites.json"
    table.write_text(json.dumps({"version": 1, "nomatch": "", "type": "string",
                                 "table": [{"index": LOOPBACK, "value": SITE}]}))  # fmt: skip
    logs, sites, port = tmp_path / "gateway-log", tmp_path / "sites", free_port()
    logs.mkdir()
    centre = rsyslogd("centre", RSYSLOG / "centre.conf", tmp_path, {
        'port="2514"': f'port="{port}"',
        'address="0.0.0.0"': f'address="{LOOPBACK}"',
        "/etc/socialguard/relp/": f"{tls}/",
        '["gw-riverside.pcn.example.nhs.uk", "gw-oakfield.pcn.example.nhs.uk"]': '["localhost"]',
        "/etc/rsyslog.d/socialguard-sites.json": str(table),
        "/var/log/socialguard-central/": f"{sites}/",
    })  # fmt: skip
    gateway = rsyslogd("gateway", RSYSLOG / "gateway.conf", tmp_path, {
        'target="logs.pcn.example.nhs.uk"': f'target="{LOOPBACK}"',
        '["logs.pcn.example.nhs.uk"]': '["localhost"]',
        'port="2514"': f'port="{port}"',
        "/etc/socialguard/relp/": f"{tls}/",
        "/var/log/socialguard/": f"{logs}/",
        'action.resumeInterval="10"': 'action.resumeInterval="1"',  # retry sooner in a test
        **(gateway_changes or {}),
    })  # fmt: skip
    site = sites / SITE
    return Relay(gateway=gateway, centre=centre, port=port, logs=logs,
                 copy=site / "audit.jsonl", heads=site / "heads.log")  # fmt: skip


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    shipped = build_relay(tmp_path)
    yield shipped
    shipped.gateway.stop()
    shipped.centre.stop()


# What a gateway changed by someone in control of it could send: a chain's name as a path.
ROGUE_NAME = {'"socialguard-chain audit." & $.chain & ".jsonl "':
              '"socialguard-chain ../../" & $.chain & ".jsonl "'}  # fmt: skip


@pytest.fixture
def rogue_relay(tmp_path: Path) -> Iterator[Relay]:
    shipped = build_relay(tmp_path, ROGUE_NAME)
    yield shipped
    shipped.gateway.stop()
    shipped.centre.stop()


def whole_log(active: Path) -> bytes:
    """The gateway's log as one byte string: its rotated files (gunzipped), oldest first, then
    the active file."""
    data = b""
    for path in sorted(active.parent.glob(f"{active.stem}.*{active.suffix}*")):
        data += gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data + active.read_bytes()


def without_repeats(copy: Path, target: Path) -> bytes:
    """The centre's copy with exact repeats of earlier lines left out, by the command
    docs/CENTRAL-LOGGING.md gives. RELP delivers at least once, so after a reconnection a line
    may arrive again; no audit line is ever written twice (each has its own id, seq and prev)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        subprocess.run(["awk", "!seen[$0]++", str(copy)], stdout=out, check=True, timeout=30,
                       env={**os.environ, "LC_ALL": "C"})  # fmt: skip
    return target.read_bytes()


def centre_check(site: Path, check: Path) -> subprocess.CompletedProcess[str]:
    """docs/CENTRAL-LOGGING.md's check of a site at the centre, run as the page prints it (only
    its two folders changed): each file without its repeats, then one verify of the copy with
    every chain's latest head."""
    text = CENTRAL_LOGGING.read_text()
    section = text[text.index("## Checking a site at the centre") :]
    start = section.index("```sh\n") + len("```sh\n")
    script = section[start : section.index("```", start)]
    for old, new in (
        ("/var/log/socialguard-central/riverside", str(site)),
        ("/var/lib/socialguard-check/riverside", str(check)),
    ):
        assert old in script, f"docs/CENTRAL-LOGGING.md's check no longer has {old}"
        script = script.replace(old, new)
    home = check.parent / "centre-home"  # no policy.yaml here, as on a central server
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60,
                          check=False, cwd=home, env=TOOLS_ENV)  # fmt: skip


def send_head(policy: Path, heads: Path) -> None:
    """The gateway's hourly socialguard-send-head."""
    sent = subprocess.run(
        ["sh", str(RSYSLOG / "socialguard-send-head"), str(policy), str(heads)],
        capture_output=True, text=True, timeout=60, check=False, cwd=heads.parent, env=TOOLS_ENV,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr


def sign(line: bytes, key: bytes) -> bytes:
    """A keyed line as the writer makes it: the HMAC of the line as it was before the MAC,
    added as its last field."""
    mac = hmac.new(key, line, hashlib.sha256).hexdigest().encode()
    return line[:-1] + MAC_FIELD + mac + b'"}'


def unsigned(line: bytes) -> bytes:
    return line[: line.rindex(MAC_FIELD)] + b"}"


def yesterdays_log(path: Path, key: bytes) -> None:
    """Three chained, keyed lines dated yesterday: what the gateway wrote the day before, so
    that the proxy's first event today rotates the file (renamed, then gzipped)."""
    prev = "genesis:" + os.urandom(8).hex()
    day = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    lines = []
    for seq in range(1, 4):
        event = {
            "detail": "written the day before",
            "event": "test.note",
            "ts": f"{day + dt.timedelta(seconds=seq):%Y-%m-%dT%H:%M:%S.000Z}",
            "id": f"SG-TEST{seq:06d}",
            "seq": seq,
            "prev": prev,
        }
        line = sign(json.dumps(event, separators=(",", ":")).encode(), key)
        lines.append(line)
        prev = hashlib.sha256(line).hexdigest()
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def rewrite_first_block(active: Path, key: bytes) -> bytes:
    """What someone holding the key can do on the gateway: change a block already written (the
    client address, same length) and redo every later line's chain and MAC, in place, so the
    file keeps its length and the gateway's own verify still holds. Returns the original line."""
    lines = active.read_bytes().split(b"\n")[:-1]
    target = next(i for i, line in enumerate(lines) if b'"access.blocked"' in line)
    original = lines[target]
    lines[target] = sign(unsigned(original).replace(b'"127.0.0.1"', b'"127.0.0.9"'), key)
    for i in range(target + 1, len(lines)):
        event = unsigned(lines[i])
        old_prev = json.loads(event)["prev"].encode()
        lines[i] = sign(
            event.replace(old_prev, hashlib.sha256(lines[i - 1]).hexdigest().encode()), key
        )
    rewritten = b"".join(line + b"\n" for line in lines)
    assert len(rewritten) == active.stat().st_size
    with active.open("r+b") as f:
        f.write(rewritten)
    return original


def audit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`socialguard audit ...` run where there is no policy.yaml, as on a central server."""
    return subprocess.run(
        [*SOCIALGUARD, "audit", *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=cwd,
    )  # fmt: skip


def block(proxy: RunningProxy, count: int) -> None:
    for n in range(count):
        answer = proxy.curl("-o", "/dev/null", "-w", "%{http_code}", f"http://www.tiktok.com/{n}")
        assert answer.stdout == "403"


def test_the_centre_keeps_a_verifiable_copy_and_catches_a_rewrite(
    relay: Relay, tmp_path: Path
) -> None:
    """Every line crosses unchanged through a rotation and a restart of the centre, the copy
    verifies and holds the head sent after it, and a gateway log rewritten with the key fails
    verify at the centre."""
    key_file = tmp_path / "audit.key"
    key_file.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    key = key_file.read_bytes().strip()
    active = relay.logs / "audit.jsonl"
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"audit:\n  path: {active}\n  hmac_key_file: {key_file}\n")
    checked = tmp_path / "checked" / "audit.jsonl"  # the centre's copy without repeats
    yesterdays_log(active, key)
    relay.start_centre()
    relay.gateway.start()
    relay.wait_until(lambda: relay.received() == active.read_bytes(), "yesterday's lines")

    # Today's first event rotates yesterday's file away and gzips it; rsyslog follows. Nothing
    # has broken the link yet, so the copy is byte for byte the gateway's log.
    proxy = start(relay.logs, "--config", str(policy))
    try:
        block(proxy, 3)
        relay.wait_until(lambda: len(list(relay.logs.glob("audit.*.jsonl.gz"))) == 1, "the gzip")
        assert not list(relay.logs.glob("audit.*.jsonl")), "the rotated file is still plain"
        relay.wait_until(lambda: relay.received() == whole_log(active), "the rotated lines")

        # The centre goes away: the gateway keeps what it cannot send, and sends it on return.
        relay.centre.stop()
        before = relay.received()
        block(proxy, 3)
        time.sleep(1)
        assert relay.received() == before
        relay.start_centre()
        # Over TLS, rsyslog sends the queue on once a new line comes (docs/CENTRAL-LOGGING.md):
        # a gateway in use always has one. Every few seconds, one more block.
        deadline = time.monotonic() + 60
        while without_repeats(relay.copy, checked) != whole_log(active):
            assert time.monotonic() < deadline, "the queued lines did not arrive within 60 s"
            block(proxy, 1)
            time.sleep(3)
    finally:
        stop(proxy)
    relay.wait_until(lambda: without_repeats(relay.copy, checked) == whole_log(active), "the end")
    assert relay.received().startswith(before)  # what the centre had is kept as it was

    # The hourly check on the gateway sends the head of its chain; it arrives beside the copy,
    # and the copy verifies (yesterday's lines with it) and holds that head.
    send_head(policy, relay.logs / "heads.log")
    relay.wait_until(
        lambda: relay.heads.exists() and relay.heads.read_text().endswith("\n"), "the head"
    )
    head = relay.heads.read_text().split()[-1]
    assert head == hashlib.sha256(active.read_bytes().splitlines()[-1]).hexdigest()
    verified = audit("verify", str(checked), "--expect-head", head, cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "the chain holds" in verified.stdout
    assert len(relay.heads.read_text().split()) == 3  # one chain: the line as it always was
    documented = centre_check(relay.copy.parent, tmp_path / "documented" / SITE)
    assert documented.returncode == 0, documented.stdout + documented.stderr
    assert f"still holds the head given ({head[:12]}…)" in documented.stdout

    # Someone with the key rewrites a block already sent; the gateway's own log still verifies.
    # The proxy starts again and carries on from the rewritten chain.
    sent = without_repeats(relay.copy, checked)
    original = rewrite_first_block(active, key)
    forged = audit("verify", "--config", str(policy), cwd=tmp_path)
    assert forged.returncode == 0, forged.stdout + forged.stderr
    written = active.stat().st_size
    proxy = start(relay.logs, "--config", str(policy))
    try:
        block(proxy, 1)
    finally:
        stop(proxy)
    added = active.read_bytes()[written:]
    relay.wait_until(lambda: without_repeats(relay.copy, checked) == sent + added, "new lines")

    caught = audit("verify", str(checked), cwd=tmp_path)
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert "BROKEN" in caught.stdout
    assert "edited" in caught.stdout
    assert original in checked.read_bytes()  # the centre still holds what was really written


def record(path: Path, key: bytes, count: int, start: int = 0) -> None:
    """`count` blocks in a worker's chain, written as the worker's own AuditLog writes them (with
    a name with an accent: the lines must cross byte for byte)."""
    log = AuditLog(path, options=AuditOptions(hmac_key=key))
    try:
        for n in range(start, start + count):
            url = f"http://www.tiktok.com/{n}"
            log.record("access.blocked", {"user": "zoë.brown", "client_ip": "127.0.0.1",
                                          "service": "tiktok", "url": url})  # fmt: skip
    finally:
        log.close()


def test_a_hubs_chains_each_arrive_in_a_file_of_their_own(relay: Relay, tmp_path: Path) -> None:
    """`run --workers 2` keeps a chain per worker (audit.w1.jsonl, audit.w2.jsonl): each arrives
    at the centre in a file of its own, worker 1's across a daily rotation; the hourly heads name
    each chain and the centre's documented check holds with them; it catches lines removed from
    the end of worker 2's chain before they were sent (worker 1's head alone would not), and
    worker 1's chain rewritten on the gateway with the key."""
    key_file = tmp_path / "audit.key"
    key_file.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    key = key_file.read_bytes().strip()
    active = relay.logs / "audit.jsonl"
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"audit:\n  path: {active}\n  hmac_key_file: {key_file}\n")
    workers = [worker_path(active, 1), worker_path(active, 2)]
    site = relay.copy.parent
    copies = [site / worker.name for worker in workers]
    check = tmp_path / "check" / SITE

    def arrived() -> bool:
        pairs = zip(copies, workers, strict=True)
        return all(c.exists() and c.read_bytes() == whole_log(w) for c, w in pairs)

    yesterdays_log(workers[0], key)
    relay.start_centre()
    relay.gateway.start()
    relay.wait_until(lambda: copies[0].exists() and copies[0].read_bytes() == whole_log(workers[0]),
                     "worker 1's lines from yesterday")  # fmt: skip
    for n in range(3):  # the two workers write in turn; worker 1's first line today rotates
        record(workers[0], key, 1, n)
        record(workers[1], key, 1, n)
    relay.wait_until(arrived, "both chains")
    assert len(list(relay.logs.glob("audit.w1.*.jsonl.gz"))) == 1
    assert sorted(p.name for p in site.iterdir()) == ["audit.w1.jsonl", "audit.w2.jsonl"]

    send_head(policy, relay.logs / "heads.log")
    relay.wait_until(lambda: relay.heads.exists() and relay.heads.read_text().count("\n") >= 2,
                     "a head for each chain")  # fmt: skip
    sent = [line.split() for line in relay.heads.read_text().splitlines()][:2]
    assert [(words[0], words[3]) for words in sent] == [
        ("socialguard-head", "audit.w1.jsonl"), ("socialguard-head", "audit.w2.jsonl")
    ]  # fmt: skip
    heads = [hashlib.sha256(w.read_bytes().splitlines()[-1]).hexdigest() for w in workers]
    assert [words[2] for words in sent] == heads
    holds = centre_check(site, check)
    assert holds.returncode == 0, holds.stdout + holds.stderr
    assert "every chain holds, and each of the 2 heads given is in a chain of its own" in (
        holds.stdout
    )

    # With the gateway's rsyslog stopped, worker 2 writes two blocks and the hourly head names
    # them; then someone removes those two lines. What rsyslog sends on restart still chains.
    relay.gateway.stop()
    kept = workers[1].stat().st_size
    record(workers[1], key, 2, 3)
    send_head(policy, relay.logs / "heads.log")
    with workers[1].open("r+b") as f:
        f.truncate(kept)
    relay.gateway.start()
    relay.wait_until(lambda: relay.heads.read_text().count("\n") >= 4, "the later heads")
    caught = centre_check(site, check)
    assert caught.returncode == 1, caught.stdout + caught.stderr
    newest = [line.split()[2] for line in relay.heads.read_text().splitlines()][-1]
    assert relay.heads.read_text().splitlines()[-1].endswith(" audit.w2.jsonl")
    last = len(whole_log(workers[1]).splitlines())
    assert f"audit.w2.jsonl:{last}: head_missing: the line whose hash is {newest}" in caught.stdout
    assert "lines were removed from the end of audit.w2.jsonl" in caught.stdout
    first_only = audit("verify", str(check), "--expect-head", heads[0], cwd=tmp_path)
    assert first_only.returncode == 0, first_only.stdout  # what one head for a hub missed
    assert f"note: {check / 'audit.w2.jsonl'}: no --expect-head was given" in first_only.stdout

    # Someone with the key rewrites a block in worker 1's chain so well that the gateway's own
    # verify holds; worker 1 carries on from it, and the centre's copy breaks there.
    original = rewrite_first_block(workers[0], key)
    forged = audit("verify", "--config", str(policy), cwd=tmp_path)
    assert forged.returncode == 0, forged.stdout + forged.stderr
    written = workers[0].stat().st_size
    record(workers[0], key, 1, 5)
    added = workers[0].read_bytes()[written:]
    relay.wait_until(lambda: copies[0].read_bytes().endswith(added), "worker 1's next line")
    edited = centre_check(site, check)
    assert edited.returncode == 1, edited.stdout + edited.stderr
    assert f"{check / 'audit.w1.jsonl'}:" in edited.stdout
    assert ": edited: " in edited.stdout
    assert original in copies[0].read_bytes()  # the centre still holds what was really written


def test_a_chain_name_the_centre_does_not_expect_is_never_a_path(
    rogue_relay: Relay, tmp_path: Path
) -> None:
    """The centre writes a worker's line to SITE/audit.wK.jsonl only for a name of that form:
    a gateway changed to name its chain "../../w1.jsonl" gets no file outside the site's folder,
    and its lines are kept apart in SITE/unrecognised.log."""
    worker = worker_path(rogue_relay.logs / "audit.jsonl", 1)
    record(worker, os.urandom(32), 1)
    unrecognised = rogue_relay.copy.parent / "unrecognised.log"
    rogue_relay.start_centre()
    rogue_relay.gateway.start()
    rogue_relay.wait_until(unrecognised.exists, "the line with the unexpected name")
    rogue_relay.wait_until(lambda: unrecognised.read_bytes().endswith(b"\n"), "its end")
    assert unrecognised.read_bytes() == b"socialguard-chain ../../w1.jsonl " + worker.read_bytes()
    received = [p for p in (tmp_path / "sites").rglob("*") if p.is_file()]
    assert received == [unrecognised]
    assert not list(tmp_path.glob("*.jsonl"))  # nothing written where "../../" pointed
