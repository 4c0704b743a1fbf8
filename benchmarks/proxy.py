"""Section 3: socialguard beside bare mitmdump and Squid through real proxies on loopback (CPU
per request, requests/s, proxy sign-in, reload under load)."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from catalog_scale import write_catalog
from common import (
    BLOCKED_HOST,
    LOOPBACK,
    PASSWORD,
    PROXY_POLICY,
    VENV_BIN,
    Server,
    free_port,
    median,
    percentile,
    ratio,
    round_order,
)
from load import Sample, Scenario, _load, measure, summarise
from table import Row, fmt_ratio

# -- 3 and 4. the proxy path -------------------------------------------------------------------
NGINX_CONF = """worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{ listen 127.0.0.1:{hp}; location / {{ return 200 "hello"; }} }}
  server {{ listen 127.0.0.1:{tp} ssl; ssl_certificate {d}/origin.pem;
    ssl_certificate_key {d}/origin.key; location / {{ return 200 "hello"; }} }} }}
"""

SQUID_CONF = """http_port 127.0.0.1:{port}
pid_filename {d}/squid.pid
cache_log {d}/cache.log
access_log none
cache_store_log none
cache deny all
cache_mem 8 MB
pinger_enable off
shutdown_lifetime 0 seconds
workers 1
via off
acl social dstdomain "{d}/social.txt"
http_access deny social
acl loopback src 127.0.0.1/32
http_access allow loopback
http_access deny all
"""


def squid_domains() -> list[str]:
    """socialguard's blocked names as a dstdomain list: `.domain` covers its subdomains."""
    from socialguard.files.policy_files import PolicyPaths, load_policy  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "policy.yaml"
        empty.write_text("# embedded defaults\n")
        policy = load_policy(PolicyPaths(empty, None))
    names = {
        d
        for d, e in policy.catalog.index.items()
        if not isinstance(e, str) and e.category in policy.settings.enforced_categories
    }
    # Squid refuses an entry that a shorter one already covers: keep the shortest.
    kept = [d for d in names if not any(s in names for s in _parents(d))]
    return sorted(f".{d}" for d in kept)


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[i:]) for i in range(1, len(parts) - 1)]


def nginx_origin(d: Path, tools: dict[str, str | None]) -> tuple[Server, int, int]:
    """The origin every proxy benchmark reaches (nginx: plain HTTP and TLS, a fixed answer),
    and the policy its proxies run, with that loopback origin allowed: (server, http, https)."""
    (d / "policy.yaml").write_text(PROXY_POLICY)
    subprocess.run(  # noqa: S603
        [
            tools.get("openssl") or "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(d / "origin.key"),
            "-out",
            str(d / "origin.pem"),
        ],
        capture_output=True,
        check=True,
    )
    hp, tp = free_port(), free_port()
    (d / "nginx.conf").write_text(NGINX_CONF.format(d=d, hp=hp, tp=tp))
    nginx = [str(tools["nginx"]), "-c", str(d / "nginx.conf"), "-p", str(d)]
    return Server("nginx", nginx, hp, d), hp, tp


def htpasswd(path: Path) -> None:
    import bcrypt  # noqa: PLC0415 - mitmproxy's own dependency

    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    path.write_text(f"bench:{hashed}\n")


def mitmdump(name: str, workdir: Path, *extra: str) -> Server:
    port = free_port()
    argv = [
        str(VENV_BIN / "mitmdump"),
        "-q",
        "--listen-host",
        LOOPBACK,
        "-p",
        str(port),
        "--set",
        "flow_detail=0",
        "--set",
        "termlog_verbosity=warn",
        "--set",
        f"confdir={workdir / ('ca-' + name)}",
        *extra,
    ]
    return Server(name, argv, port, workdir)


def socialguard(name: str, workdir: Path, *extra: str) -> Server:
    port = free_port()
    argv = [
        str(VENV_BIN / "socialguard"),
        "run",
        "--config",
        str(workdir / "policy.yaml"),
        "--listen",
        f"{LOOPBACK}:{port}",
        "--audit-log",
        str(workdir / f"audit-{name}.jsonl"),
        "--confdir",
        str(workdir / f"ca-{name}"),
        *extra,
    ]
    return Server(name, argv, port, workdir)


@dataclasses.dataclass
class Case:
    """One row of section 3/4: a scenario per configuration, measured in the same rounds."""

    section: str
    label: str
    concurrency: int
    scenarios: dict[str, tuple[Server, Scenario]]
    baseline: str | None
    peer: str | None = None
    target: float | None = None
    target_text: str = ""
    samples: dict[str, list[Sample]] = dataclasses.field(default_factory=dict)


def bench_proxy(
    workdir: Path,
    tools: dict[str, str | None],
    rounds: int,
    seconds: float,
    concurrencies: Sequence[int],
    log: Callable[[str], None],
) -> list[Row]:
    if not tools.get("nginx"):
        return [Row("3 proxy", "all", "skipped: nginx is not installed and apt-get could not")]
    origin, hp, tp = nginx_origin(workdir, tools)
    htpasswd(workdir / "htpasswd")
    auth = f"@{workdir / 'htpasswd'}"
    servers = {
        "sg": socialguard("sg", workdir),
        "sg-auth": socialguard("sg-auth", workdir, "--proxyauth", auth),
        "mitm": mitmdump("mitm", workdir),
        "mitm-ignore": mitmdump("mitm-ignore", workdir, "--ignore-hosts", ".*"),
        "mitm-blocklist": mitmdump(
            "mitm-blocklist", workdir, "--set", f"block_list=:~d {BLOCKED_HOST}:403"
        ),
        "mitm-auth": mitmdump("mitm-auth", workdir, "--proxyauth", auth),
    }
    squid = tools.get("squid")
    if squid:
        sq = workdir / "squid"
        sq.mkdir()
        sq.chmod(0o777)  # squid run as root drops to its own user
        (sq / "social.txt").write_text("\n".join(squid_domains()) + "\n")
        port = free_port()
        (sq / "squid.conf").write_text(SQUID_CONF.format(port=port, d=sq))
        servers["squid"] = Server("squid", [squid, "-N", "-f", str(sq / "squid.conf")], port, sq)
    started: list[Server] = []
    rows: list[Row] = []
    try:
        origin.start()
        started.append(origin)
        for server in servers.values():
            log(f"starting {server.name}")
            try:
                server.start()
                started.append(server)
            except RuntimeError as error:
                log(str(error))
        up = {name for name, s in servers.items() if s in started}
        ctx = ssl.create_default_context(cafile=str(workdir / "origin.pem"))
        closed = free_port()  # nothing listens here: a CONNECT to it is refused upstream
        plain, tls_target = f"{LOOPBACK}:{hp}", f"localhost:{tp}"
        user = f"bench:{PASSWORD}"
        ok200, refused, bad_gateway = frozenset({200}), frozenset({403}), frozenset({502})

        def sc(
            server: str, kind: str, target: str, expect: frozenset[int], **kw: Any
        ) -> tuple[Server, Scenario]:
            return servers[server], Scenario(kind, servers[server].port, target, expect, **kw)

        cases: list[Case] = []
        http_target = "CPU/req ≥ 0.95 of mitmdump's"
        for c in concurrencies:
            for kind, label in (
                ("http-keepalive", "(a) allowed HTTP, keep-alive"),
                ("http-close", "(a) allowed HTTP, new connection each"),
            ):
                runs = {name: sc(name, kind, plain, ok200) for name in ("sg", "mitm", "squid")}
                cases.append(
                    Case(
                        "3/4 proxy",
                        label,
                        c,
                        runs,
                        "mitm",
                        "squid",
                        target=0.95,
                        target_text=http_target,
                    )
                )
            runs = {
                "sg": sc("sg", "tunnel", tls_target, ok200, tls=ctx),
                "mitm": sc("mitm-ignore", "tunnel", tls_target, ok200, tls=ctx),
                "squid": sc("squid", "tunnel", tls_target, ok200, tls=ctx),
            }
            label = "(b) allowed HTTPS tunnel: CONNECT + TLS, origin cert verified + 1 request"
            target = "CPU/req ≥ 0.95 of mitmdump --ignore-hosts '.*'"
            cases.append(
                Case("3/4 proxy", label, c, runs, "mitm", "squid", target=0.95, target_text=target)
            )
            blocked = f"{BLOCKED_HOST}:443"
            runs = {
                "sg": sc("sg", "blocked-connect", blocked, refused),
                "mitm": sc("mitm-ignore", "blocked-connect", f"{LOOPBACK}:{closed}", bad_gateway),
                "squid": sc("squid", "blocked-connect", blocked, refused),
            }
            label = f"(c) blocked CONNECT {blocked} (mitmdump: CONNECT to a closed port, 502)"
            cases.append(Case("3/4 proxy", label, c, runs, "mitm", "squid", target_text="reported"))
            runs = {
                "sg": sc("sg", "blocked-http", BLOCKED_HOST, refused),
                "mitm": sc("mitm-blocklist", "blocked-http", BLOCKED_HOST, refused),
            }
            label = (
                "(d) blocked HTTP: block page + audit write "
                "(mitmdump: its block_list 403, no page, no record)"
            )
            cases.append(Case("3 proxy", label, c, runs, baseline="mitm", target_text="reported"))
        auth_c = 10 if 10 in concurrencies else concurrencies[0]
        auth_target = "req/s ≥ 0.9 of the same without auth"
        auth_cases = {
            "bcrypt proxy auth on vs off: HTTP keep-alive": {
                "sg": sc("sg-auth", "http-keepalive", plain, ok200, auth=user),
                "auth-off": sc("sg", "http-keepalive", plain, ok200),
                "mitm-auth": sc("mitm-auth", "http-keepalive", plain, ok200, auth=user),
            },
            "bcrypt proxy auth on vs off: new HTTPS tunnels": {
                "sg": sc("sg-auth", "tunnel", tls_target, ok200, tls=ctx, auth=user),
                "auth-off": sc("sg", "tunnel", tls_target, ok200, tls=ctx),
            },
        }
        for label, runs in auth_cases.items():
            cases.append(
                Case(
                    "3 auth",
                    label,
                    auth_c,
                    runs,
                    baseline="auth-off",
                    target=0.9,
                    target_text=auth_target,
                )
            )

        for case in cases:
            case.scenarios = {k: v for k, v in case.scenarios.items() if v[0].name in up}
        # Warm every proxy and path once (CA generation, first-connection costs).
        for case in cases:
            for server, scenario in case.scenarios.values():
                measure(scenario, server.pid, 2, min(0.3, seconds))
        for r in range(rounds):
            log(f"round {r + 1}/{rounds}")
            for case in cases if r % 2 == 0 else reversed(cases):
                for config in round_order(list(case.scenarios), r):
                    server, scenario = case.scenarios[config]
                    window = seconds if config != "mitm-auth" else max(seconds, 2.0)
                    sample = measure(scenario, server.pid, case.concurrency, window)
                    case.samples.setdefault(config, []).append(sample)
        for case in cases:
            rows.extend(case_rows(case))
        if "sg" in up:
            rows.extend(bench_reload(workdir, servers["sg"], plain, seconds, log))
    finally:
        for server in reversed(started):
            server.stop()
    return rows


def case_rows(case: Case) -> list[Row]:
    summaries = {k: summarise(v) for k, v in case.samples.items()}
    sg = summaries.get("sg")
    if sg is None:
        return [Row(case.section, case.label, "not measured (proxy did not start)")]
    base = summaries.get(case.baseline) if case.baseline else None
    name = "mitmdump" if not case.section.endswith("auth") else "auth off"
    rows = []
    if base is not None:
        efficiency = ratio(base.cpu_ms, sg.cpu_ms)
        throughput = ratio(sg.rps, base.rps)
        is_auth = case.section.endswith("auth")
        rows.append(
            Row(
                case.section,
                f"{case.label}, c={case.concurrency}",
                sg.cell(),
                f"{name}: {base.cell()}",
                f"CPU/req {fmt_ratio(efficiency, None if is_auth else case.target)} · "
                f"req/s {fmt_ratio(throughput, case.target if is_auth else None)}",
                case.target_text,
            )
        )
    if "mitm-auth" in summaries:
        bare = summaries["mitm-auth"]
        rows.append(
            Row(
                case.section,
                f"bare mitmdump with the same htpasswd, c={case.concurrency}",
                "",
                f"mitmdump + auth: {bare.cell()}",
                f"socialguard+auth / bare+auth req/s {fmt_ratio(ratio(sg.rps, bare.rps))}",
            )
        )
    peer = summaries.get(case.peer) if case.peer else None
    if peer is not None:
        rows.append(
            Row(
                case.section,
                f"{case.label}, c={case.concurrency}: Squid",
                "",
                f"Squid: {peer.cell()}",
                f"socialguard/Squid req/s {fmt_ratio(ratio(sg.rps, peer.rps))} · CPU/req "
                f"{fmt_ratio(ratio(peer.cpu_ms, sg.cpu_ms))}",
                "no target",
            )
        )
    return rows


# -- 6. reload --------------------------------------------------------------------------------
def bench_reload(
    workdir: Path, running: Server, plain: str, seconds: float, log: Callable[[str], None]
) -> list[Row]:
    """Swap time for a 100,000-domain catalogue, and failed requests while reloading under load."""
    from socialguard.files.policy_files import PolicyPaths, load_policy  # noqa: PLC0415
    from socialguard.proxy.reload import PolicyHolder  # noqa: PLC0415

    reloads = 20 if seconds >= 1 else 3
    big = workdir / "catalog-100k.yaml"
    write_catalog(big, 100_000)
    policy = workdir / "policy-reload.yaml"
    policy.write_text(PROXY_POLICY + f"catalogs: [{big}]\n")
    authorisations = workdir / "authorisations.yaml"
    authorisations.write_text("approvers: [practice.manager]\nexemptions: []\n")
    paths = PolicyPaths(policy, authorisations)
    holder = PolicyHolder(load_policy(paths))
    times = []
    for _ in range(3):
        started = time.perf_counter()
        loaded = load_policy(paths)
        validated = time.perf_counter()
        holder.replace(loaded)
        times.append((validated - started, time.perf_counter() - validated))
    validate_s = median([t[0] for t in times])
    swap_us = median([t[1] for t in times]) * 1e6
    rows = [
        Row(
            "6 reload",
            "validate a policy with a 100,000-domain catalogue, then swap it",
            f"validate {validate_s:.2f} s (in a thread beside the proxy) · swap {swap_us:.1f} µs",
            "",
            "",
            "swap ≤ 200 ms",
        )
    ]
    server = socialguard("sg-reload", workdir, "--authorisations", str(authorisations))
    server.argv[server.argv.index("--config") + 1] = str(policy)
    try:
        server.start()
    except RuntimeError as error:
        log(str(error))
        return [*rows, Row("6 reload", "under load", "not measured: the proxy did not start")]
    try:
        scenario = Scenario("http-keepalive", server.port, plain, frozenset({200}))
        window = reloads * 2.0

        async def edits() -> None:
            for i in range(reloads):
                await asyncio.sleep(window / reloads)
                text = f"approvers: [practice.manager]\nexemptions: []\n# edit {i}\n"
                tmp = authorisations.with_suffix(".tmp")
                tmp.write_text(text)
                tmp.replace(authorisations)

        async def both() -> tuple[int, int, list[float]]:
            load = asyncio.create_task(_load(scenario, 10, window + 2.5))
            await edits()
            return await load

        ok, failed, latencies = asyncio.run(both())
        audit = (workdir / "audit-sg-reload.jsonl").read_text().splitlines()
        taken = sum(1 for line in audit if '"trigger":"reload"' in line.replace(" ", ""))
        rows.append(
            Row(
                "6 reload",
                f"{reloads} reloads of that policy under HTTP keep-alive load (c=10)",
                f"{taken} reloads taken · {ok:,} requests · {failed} failed · p99 "
                f"{percentile(latencies, 99) * 1000:.1f} ms · max {max(latencies) * 1000:.0f} ms",
                "",
                "",
                "zero failed",
            )
        )
    finally:
        server.stop()
    return rows
