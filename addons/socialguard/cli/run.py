"""`socialguard run`: start the proxy. The one command (with `ca`) that loads mitmproxy."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import click

from socialguard.cli.common import AUTHORISATIONS_OPTION, CONFIG_OPTION, Refusal, load_or_exit
from socialguard.core.policy import Policy
from socialguard.core.settings import parse_listen, proxyauth_problem
from socialguard.files.policy_files import SEARCH_ORDER, PolicyPaths


@click.command()
@CONFIG_OPTION
@AUTHORISATIONS_OPTION
@click.option("--listen", help="HOST:PORT to listen on (default from policy.yaml: 0.0.0.0:8080).")
@click.option(
    "--audit-log",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Audit log file (default from policy.yaml: var/audit.jsonl).",
)
@click.option("--proxyauth", help="Require proxy sign-in: @/path/to/htpasswd, or an LDAP spec.")
@click.option("--upstream", help="Send allowed traffic through this HTTP proxy (http://host:port).")
@click.option(
    "--mode",
    type=click.Choice(["regular", "transparent"]),
    default="regular",
    show_default=True,
    help="Explicit proxy, or transparently redirected traffic.",
)
@click.option(
    "--confdir",
    help="Directory of the CA that signs block pages (default from policy.yaml: var/ca).",
)
@click.option(
    "--console",
    type=click.Choice(["counts", "full"]),
    default=None,
    help="What the console (the journal under systemd) shows: counts and errors only, or full "
    "lines with names, addresses and hosts for debugging (default from policy.yaml: counts).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Proxy processes sharing the listening address (one per core on a hub); each keeps "
    "its own audit chain beside --audit-log (audit.w1.jsonl, …), read as one record by "
    "`socialguard audit`.",
)
@click.option("--worker-index", type=click.IntRange(1, 64), default=None, hidden=True)
def run(
    config: Path | None,
    authorisations: Path | None,
    listen: str | None,
    audit_log: Path | None,
    proxyauth: str | None,
    upstream: str | None,
    mode: str,
    confdir: str | None,
    console: str | None,
    workers: int,
    worker_index: int | None,
) -> None:
    """Start the proxy. An invalid policy stops it before it listens.

    It says on standard error which files it uses: the policy file (found by --config, then
    $SOCIALGUARD_CONFIG, then config/policy.yaml here, then /etc/socialguard/policy.yaml), the
    authorisation list, the audit log and the CA. SIGHUP re-reads every file at once.
    """
    paths = PolicyPaths(config, authorisations).fixed()
    policy = load_or_exit(paths)
    settings = policy.settings
    try:
        host, port = (
            parse_listen(listen) if listen else (settings.listen_host, settings.listen_port)
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--listen") from None
    if proxyauth is not None and (problem := proxyauth_problem(proxyauth)):
        raise click.BadParameter(problem, param_hint="--proxyauth")
    if upstream and not upstream.startswith(("http://", "https://")):
        raise click.BadParameter("write it as http://HOST:PORT", param_hint="--upstream")
    # A worker shares the address its siblings already listen on: only the parent checks it.
    problem = listen_problem(host, port) if worker_index is None else None
    if problem:
        raise Refusal(
            f"cannot listen on {host}:{port}: {problem} — is socialguard (or another proxy) "
            "already running there? Choose another with --listen HOST:PORT or `listen:` in "
            "policy.yaml"
        )
    ca_dir = Path(confdir) if confdir else settings.ca_dir
    if workers > 1 and worker_index is None:
        config_path = paths.config_path()
        listed = paths.authorisations_path(settings)
        sys.exit(
            _supervise(
                workers,
                [
                    *(["--config", str(config_path)] if config_path else []),
                    *(["--authorisations", str(listed)] if authorisations and listed else []),
                    *(["--proxyauth", proxyauth] if proxyauth else []),
                    *(["--upstream", upstream] if upstream else []),
                    *(["--console", console] if console else []),
                    *(["--audit-log", str(audit_log)] if audit_log else []),
                    "--confdir",
                    str(ca_dir),
                    "--listen",
                    f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                    "--mode",
                    mode,
                ],
                ca_dir,
            )
        )
    from socialguard.audit.files import worker_path  # noqa: PLC0415
    from socialguard.audit.log import AuditError, AuditLog, audit_options, console_stream  # noqa: PLC0415
    from socialguard.proxy.reload import PolicyHolder, Recorder, record_start  # noqa: PLC0415
    from socialguard.proxy.runner import ProxyOptions, serve  # noqa: PLC0415 - mitmproxy is slow
    from socialguard.proxy.signin import password_file_problem  # noqa: PLC0415

    sign_in = proxyauth or settings.proxyauth
    if sign_in and (problem := password_file_problem(sign_in)):
        raise Refusal(problem)
    audit_path = audit_log or settings.audit_path
    if worker_index is not None:
        # One writer per chain: each worker its own file beside the path given.
        audit_path = worker_path(audit_path, worker_index)
        from socialguard.proxy.workers import (  # noqa: PLC0415
            share_listening_address,
            stop_with_supervisor,
        )

        stop_with_supervisor()
        share_listening_address()
    announce_files(paths, policy, audit_path, ca_dir)
    try:
        audit = AuditLog(
            audit_path,
            console=console_stream(),
            options=audit_options(settings),
            console_mode=console or settings.console,
        )
    except AuditError as error:
        raise Refusal(str(error)) from None
    except OSError as error:
        raise Refusal(
            f"cannot write the audit log {audit_path}: {error.strerror} — check the path "
            "and its permissions"
        ) from None
    recorder: Recorder = audit
    if worker_index is not None and worker_index > 1:
        from socialguard.proxy.workers import SiblingRecorder  # noqa: PLC0415

        recorder = SiblingRecorder(audit)  # exemption changes: recorded by worker 1 only
    try:
        # policy.loaded, and the exemption.* events for what changed while the proxy was stopped
        record_start(recorder, policy, paths, audit_path)
    except OSError as error:
        raise Refusal(
            f"cannot write the audit log {audit_path}: {error.strerror or error} — check the "
            "disk and the file's permissions"
        ) from None
    options = ProxyOptions(
        listen_host=host,
        listen_port=port,
        mode=mode,
        upstream=upstream or settings.upstream,
        proxyauth=sign_in,
        https_block_page=settings.https_block == "page",
        confdir=str(ca_dir),
    )
    holder = PolicyHolder(policy)
    metrics = None
    if settings.metrics_listen:
        from socialguard.proxy.metrics import Metrics  # noqa: PLC0415

        metrics = Metrics(holder)
        metrics_listen = settings.metrics_listen
        if worker_index is not None:
            # Worker k serves its metrics on the configured port + k - 1.
            metrics_host, metrics_port = parse_listen(metrics_listen)
            metrics_listen = f"{metrics_host}:{metrics_port + worker_index - 1}"
        try:
            metrics.serve(metrics_listen, health=audit.health)
        except (OSError, ValueError) as error:
            raise Refusal(
                f"cannot serve metrics on {metrics_listen}: {error} — set "
                "metrics.listen in policy.yaml to a free HOST:PORT, or remove it"
            ) from None
    click.echo(f"socialguard: listening on {host}:{port}; audit log {audit_path}", err=True)
    sys.exit(asyncio.run(serve(options, holder, audit, paths, metrics, recorder=recorder)))


def _supervise(workers: int, arguments: list[str], ca_dir: Path) -> int:
    """Start `workers` proxy processes on one address and wait for them (see proxy/workers)."""
    from socialguard.proxy.ca import ensure_ca  # noqa: PLC0415
    from socialguard.proxy.workers import supervise, worker_command  # noqa: PLC0415

    # Made once here: workers racing to create it would each sign with a different CA.
    ensure_ca(ca_dir)
    click.echo(
        f"socialguard: starting {workers} workers on one address; each keeps its own audit "
        "chain (audit.w1.jsonl, …) beside the audit log",
        err=True,
    )
    return supervise([worker_command(i, arguments) for i in range(1, workers + 1)])


def announce_files(paths: PolicyPaths, policy: Policy, audit_path: Path, ca_dir: Path) -> None:
    """Say which files this proxy uses; loudly when it is about to make state where nobody
    configured it (no policy file at all) or to make a new CA or audit log."""
    from socialguard.audit.files import log_segments  # noqa: PLC0415
    from socialguard.proxy.ca import KEY_FILE  # noqa: PLC0415

    settings = policy.settings
    config = paths.config_path()
    listed = paths.authorisations_path(settings)

    def say(text: str) -> None:
        click.echo(f"socialguard: {text}", err=True)

    if config is None:
        say(
            f"WARNING: no policy file was found ({SEARCH_ORDER}). Running on the embedded "
            f"defaults with every file relative to the current directory {Path.cwd()}: audit log "
            f"{audit_path}, CA {ca_dir}. If socialguard is installed on this machine this is "
            "the wrong place: stop it and start it with --config /etc/socialguard/policy.yaml "
            "(or set SOCIALGUARD_CONFIG)."
        )
    else:
        say(f"policy {config} (from {paths.found_by()}; {settings.layout.name} layout)")
    if listed is not None:
        say(f"authorisations {listed}")
    else:
        say(
            f"authorisations: none — {settings.authorisations_path} does not exist, so no "
            "exemptions are in force"
        )
    if not (ca_dir / KEY_FILE).exists():
        say(
            f"WARNING: no CA in {ca_dir}: making a NEW one there. Devices that trust an earlier "
            "socialguard CA will not trust this one; if this gateway had a CA, stop and point "
            "ca_dir in policy.yaml (or --confdir) at it."
        )
    else:
        say(f"CA {ca_dir}")
    try:
        existing = bool(log_segments(audit_path))
    except OSError:
        existing = False
    if not existing:
        say(
            f"WARNING: no audit log at {audit_path}: starting a NEW one there. If this gateway "
            "already has an audit log, stop and point audit.path in policy.yaml at it."
        )
    else:
        say(f"audit log {audit_path}")


def listen_problem(host: str, port: int) -> str | None:
    """Why the proxy could not listen on HOST:PORT, asked before mitmproxy starts: its own
    message suggests a `--mode` option that socialguard does not have."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        return str(error.strerror or error)
    return None
