"""Start the page: load the settings once, open the page's own audit chain, serve with uvicorn
(HTTPS when IT names a certificate), and send the weekly digest when it is due."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from socialguard.audit.log import AuditLog, audit_options
from socialguard.core.admin_settings import is_loopback
from socialguard.core.settings import Settings
from socialguard.files.exemption_actions import Context, utc_now
from socialguard.web import digest, events
from socialguard.web.accounts import SignInLimiter
from socialguard.web.app import AdminState, create_app
from socialguard.web.sessions import Signer
from socialguard.web.staff_requests import RequestStore
from socialguard.web.trusted_hosts import page_names

REQUESTS_FILE = "exemption-requests.json"


class StartError(Exception):
    """The page cannot start: the message says what to set or fix."""


def admin_audit_path(settings: Settings) -> Path:
    """The page's own chained log: admin.audit_path, else admin/admin-audit.jsonl beside the
    proxy's log. Its own folder: the page writes there and nowhere near the proxy's files, and
    `socialguard audit verify FOLDER` sees one log in each folder."""
    if settings.admin.audit_path:
        return Path(settings.admin.audit_path)
    return settings.audit_path.parent / "admin" / "admin-audit.jsonl"


def htpasswd_path(settings: Settings) -> Path:
    """admin.htpasswd; else, installed, /etc/socialguard/admin.htpasswd once IT has made it
    (`socialguard users add --htpasswd …`, as install.sh says); else the proxy's own password
    file (identity.proxyauth "@FILE")."""
    if settings.admin.htpasswd:
        return Path(settings.admin.htpasswd)
    own = settings.layout.admin_htpasswd
    if own is not None and own.is_file():
        return own
    proxyauth = settings.proxyauth or ""
    if proxyauth.startswith("@"):
        return Path(proxyauth[1:])
    make = own or Path("FILE")
    raise StartError(
        "no password file for the page: make one with the Practice Manager's sign-in, "
        f"'socialguard users add --htpasswd {make} practice.manager'"
        + ("" if own else ", and set admin.htpasswd in policy.yaml to it")
        + " (or set identity.proxyauth to '@FILE' so that the page uses the proxy's)"
    )


def request_store(settings: Settings, context: Context) -> RequestStore:
    """Staff requests, beside the page's own log (in the folder only the page writes)."""
    return RequestStore(admin_audit_path(settings).parent / REQUESTS_FILE, context.now)


def make_state(context: Context) -> AdminState:
    settings = context.settings
    htpasswd = htpasswd_path(settings)
    if not htpasswd.is_file():
        raise StartError(f"{htpasswd}: the password file was not found — check admin.htpasswd")
    log = AuditLog(admin_audit_path(settings), options=audit_options(settings))
    return AdminState(
        context=context,
        htpasswd=htpasswd,
        proxy_audit=settings.audit_path,
        log=log,
        store=request_store(settings, context),
        signer=Signer(settings.admin.session_minutes * 60),
        limiter=SignInLimiter(),
    )


async def _digest_loop(state: AdminState) -> None:
    """Send the digest at its weekday and time; each sending is recorded in the page's chain."""
    settings = state.context.settings
    while True:
        due = digest.next_due(settings, utc_now())
        while (wait := (due - utc_now()).total_seconds()) > 0:
            await asyncio.sleep(min(wait, 60))  # short naps: a clock change moves `due`
        try:
            built = await asyncio.to_thread(
                digest.build, state.context, state.store, state.proxy_audit
            )
            await asyncio.to_thread(digest.send, built, settings)
        except (digest.DigestError, Exception) as error:  # noqa: BLE001 - recorded, retried next week
            state.log.record(events.DIGEST_FAILED, {"why": str(error)})
        else:
            state.log.record(events.DIGEST_SENT, {"to": list(settings.digest.to)})
        await asyncio.sleep(1)


def serve(context: Context, listen: tuple[str, int] | None = None) -> None:
    """Run the page until stopped (SIGTERM or Ctrl+C)."""
    settings = context.settings
    host, port = listen or (settings.admin.listen_host, settings.admin.listen_port)
    tls = settings.admin.tls_cert is not None
    state = make_state(context)
    app: Starlette = create_app(state, page_names(host, settings.admin.public_url))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = None
        if settings.digest.smtp_host is not None:
            task = asyncio.create_task(_digest_loop(state))
        yield
        if task is not None:
            task.cancel()

    app.router.lifespan_context = lifespan
    scheme = "https" if tls else "http"
    state.log.record(
        events.STARTED,
        {"listen": f"{host}:{port}", "scheme": scheme, "public_url": settings.admin.public_url},
    )
    note = ""
    if not tls and not is_loopback(host):
        note = (
            " (plain HTTP: only browsers on this machine or a TLS reverse proxy on it can sign "
            "in — set admin.tls_cert and admin.tls_key to serve HTTPS)"
        )
    print(
        f"socialguard admin: the Practice Manager's page on {scheme}://{host}:{port}/{note}",
        flush=True,
    )
    options: dict[str, Any] = {}
    if tls:
        options = {"ssl_certfile": settings.admin.tls_cert, "ssl_keyfile": settings.admin.tls_key}
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips="127.0.0.1",
            **options,
        )
    finally:
        state.log.close()


def today(context: Context) -> dt.date:
    return context.today()
