"""Start mitmproxy with socialguard in the right place of its addon chain.

mitmproxy's own `-s` loading has traps (the addon runs after nothing, options given twice drop
it silently); building the master here puts the enforcer after proxy authentication and
before NextLayer, where `next_layer` decisions still count.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from mitmproxy import addons, master, options
from mitmproxy.addons import (
    anticache,
    anticomp,
    blocklist,
    browser,
    clientplayback,
    command_history,
    comment,
    cut,
    errorcheck,
    export,
    maplocal,
    mapremote,
    modifybody,
    modifyheaders,
    next_layer,
    onboarding,
    proxyauth,
    save,
    savehar,
    script,
    serverplayback,
    stickyauth,
    stickycookie,
)

from socialguard.audit.log import AuditLog
from socialguard.core.signup import MAX_INSPECTED
from socialguard.files.policy_files import PolicyPaths
from socialguard.proxy import systemd
from socialguard.proxy.ca import ensure_ca
from socialguard.proxy.directory import DirectorySignIn
from socialguard.proxy.enforcer import Enforcer
from socialguard.proxy.metrics import Metrics
from socialguard.proxy.reload import PolicyHolder, PolicyWatcher
from socialguard.proxy.reload import Recorder as ReloadRecorder
from socialguard.proxy.signin import Recorder, SignIn

logger = logging.getLogger("socialguard")
STREAM_BODIES_ABOVE = f"{MAX_INSPECTED // 1024}k"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyOptions:
    """How mitmproxy itself is set up (the policy decides what it lets through)."""

    listen_host: str
    listen_port: int
    mode: str = "regular"
    upstream: str | None = None
    proxyauth: str | None = None
    https_block_page: bool = False
    confdir: str | None = None


# mitmproxy's default addons that a gateway never uses: interactive and replay tools, traffic
# rewriting, saving flows, scripts, the mitm.it onboarding site. Each one is still asked about
# every event of every connection (mitmproxy looks up each hook on each addon), so carrying
# them cost every request some CPU; none of them acts unless an option socialguard never sets
# asks it to. Kept: Core, Block (block_global/block_private), StripDnsHttpsRecords, DisableH2C,
# Proxyserver, DnsResolver, NextLayer, TlsConfig, UpstreamAuth, UpdateAltSvc, and sign-in.
UNUSED_ADDONS: tuple[type, ...] = (
    anticache.AntiCache,
    anticomp.AntiComp,
    browser.Browser,
    blocklist.BlockList,
    clientplayback.ClientPlayback,
    command_history.CommandHistory,
    comment.Comment,
    cut.Cut,
    export.Export,
    maplocal.MapLocal,
    mapremote.MapRemote,
    modifybody.ModifyBody,
    modifyheaders.ModifyHeaders,
    onboarding.Onboarding,
    save.Save,
    savehar.SaveHar,
    script.ScriptLoader,
    serverplayback.ServerPlayback,
    stickyauth.StickyAuth,
    stickycookie.StickyCookie,
)


def addon_chain(
    enforcer: object, audit: Recorder | None = None, directory: object | None = None
) -> list[object]:
    """mitmproxy's default addons that a gateway uses, with ProxyAuth replaced by SignIn
    (checked off the event loop, limited per address, following its file), directory sign-in
    beside it, and the enforcer before NextLayer."""
    chain: list[object] = []
    for addon in addons.default_addons():
        if isinstance(addon, UNUSED_ADDONS):
            continue
        if isinstance(addon, proxyauth.ProxyAuth):
            chain.append(SignIn(audit))
            if directory is not None:
                chain.append(directory)
            continue
        if isinstance(addon, next_layer.NextLayer):
            chain.append(enforcer)
        chain.append(addon)
    return chain


def mitmproxy_options(opts: ProxyOptions) -> dict[str, object]:
    mode = f"upstream:{opts.upstream}" if opts.upstream else opts.mode
    values: dict[str, object] = {
        "listen_host": opts.listen_host,
        "listen_port": opts.listen_port,
        "mode": [mode],
        "termlog_verbosity": "warn",  # no dumper addon either: URLs never reach the console
        "proxyauth": opts.proxyauth,
        # Eager connects to a blocked site at CONNECT time, before a page could be shown.
        "connection_strategy": "lazy" if opts.https_block_page else "eager",
        # A body larger than what the signup guard reads is passed on as it arrives, never
        # held whole: one 300 MiB upload would otherwise cost the proxy twice that in memory.
        "stream_large_bodies": STREAM_BODIES_ABOVE,
    }
    if opts.confdir:
        values["confdir"] = opts.confdir
    return values


async def serve(
    opts: ProxyOptions,
    holder: PolicyHolder,
    audit: AuditLog,
    paths: PolicyPaths,
    metrics: Metrics | None = None,
    recorder: ReloadRecorder | None = None,
) -> int:
    """Run the proxy, following the policy files, until SIGINT/SIGTERM; returns the exit code."""
    logging.getLogger().setLevel(logging.INFO)
    for noisy in ("hpack", "asyncio", "passlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    mitm = master.Master(options.Options(), with_termlog=True)
    enforcer = Enforcer(holder, audit, metrics=metrics, page_mode=opts.https_block_page)
    directory = DirectorySignIn(
        lambda: holder().settings.ldap, audit, contact=lambda: holder().settings.practice.contact
    )
    mitm.addons.add(
        *addon_chain(enforcer, audit, directory),
        errorcheck.ErrorCheck(repeat_errors_on_stderr=True),
    )
    # The CA that signs block pages: `--confdir`, else policy.yaml's ca_dir (var/ca), the same
    # directory `socialguard ca export` reads; made here, with an owner-only key, if missing.
    confdir = ensure_ca(Path(opts.confdir or holder().settings.ca_dir)).parent
    mitm.options.update(**mitmproxy_options(dataclasses.replace(opts, confdir=str(confdir))))
    loop = asyncio.get_running_loop()

    def stop() -> None:
        systemd.stopping()
        mitm.shutdown()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    # A changed file is taken within about a second; the swap never touches open connections.
    on_result = (lambda ok: metrics.reloaded(ok=ok)) if metrics is not None else None
    # `recorder`: where reloads are recorded (a worker other than the first: SiblingRecorder).
    watcher = PolicyWatcher(paths, holder, recorder or audit, on_result=on_result)
    watching = asyncio.create_task(watcher.watch(), name="socialguard-policy-watcher")
    # SIGHUP (systemctl reload): every file read again at once, never a stop.
    reloads: set[asyncio.Task[None]] = set()

    def hangup() -> None:
        task = asyncio.create_task(_reload_on_signal(watcher), name="socialguard-sighup")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    mitm.addons.add(_Lifecycle(f"listening on {opts.listen_host}:{opts.listen_port}"))
    try:
        await mitm.run()
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
    return 0


async def _reload_on_signal(watcher: PolicyWatcher) -> None:
    """RELOADING=1, the policy files read and taken (or rejected and recorded), then READY=1.
    (The sign-in file is followed by SignIn itself, within about a second of a change.)"""
    systemd.reloading()
    try:
        await asyncio.to_thread(watcher.reload_now, "sighup")
    except Exception:
        logger.exception("socialguard: reloading on SIGHUP failed; the last good policy stays")
    finally:
        systemd.ready("reloaded")


class _Lifecycle:
    """Tells systemd the proxy is ready once mitmproxy's servers listen (its `running` hook
    comes after they are set up)."""

    def __init__(self, status: str) -> None:
        self._status = status

    def running(self) -> None:
        systemd.ready(self._status)
