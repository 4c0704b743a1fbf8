"""The Practice Manager's page: a small Starlette application over the authorisation list.

Server-rendered forms, no JavaScript, nothing from the network. Every change goes through
`files.exemption_actions` (the code path of `socialguard exemptions …`); every sign-in, refusal
and action is recorded in the page's own chained log, never in the proxy's.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from socialguard.audit.log import AuditLog
from socialguard.core.admin_settings import is_loopback
from socialguard.files import exemption_actions as actions
from socialguard.files.exemption_actions import (
    ActionRefusedError,
    Context,
    FieldError,
    UsageProblemError,
)
from socialguard.templates import environment
from socialguard.web import events
from socialguard.web.accounts import PasswordFileError, SignInLimiter, check_password
from socialguard.web.overview import (
    ExemptionRow,
    exemption_rows,
    find_block,
    latest_blocks,
    person_of,
    service_name,
)
from socialguard.web.sessions import (
    CSRF_FIELD,
    SESSION_COOKIE,
    VISITOR_COOKIE,
    Session,
    SessionExpiredError,
    Signer,
)
from socialguard.web.staff_requests import (
    APPROVED,
    DECLINED,
    EXPIRED,
    PENDING,
    RequestError,
    RequestStore,
    StaffRequest,
)
from socialguard.web.trusted_hosts import HostCheck, PageNames

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
MAX_FORM_BYTES = 64 * 1024
NEEDS_HTTPS = (
    "This page must be opened over HTTPS from other computers: sign-in cookies are never "
    "sent over plain HTTP beyond this machine. Ask IT for the page's https:// address."
)
REQUEST_STATES = {
    PENDING: "Waiting for the Practice Manager's answer.",
    APPROVED: "Approved.",
    DECLINED: "Declined.",
    EXPIRED: "Not answered in time, so it has expired. Ask again from the block page "
    "if you still need it.",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminState:
    """Everything the page works with, made once when `socialguard admin` starts."""

    context: Context
    htpasswd: Path
    proxy_audit: Path
    log: AuditLog
    store: RequestStore
    signer: Signer
    limiter: SignInLimiter


class SecurityHeaders:
    """Adds the Content-Security-Policy and friends to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (n, v) for n, v in SECURITY_HEADERS if n not in names
                ]
            await send(message)

        await self.app(scope, receive, add_headers)


@functools.cache
def _css() -> str:
    env = environment()
    assert env.loader is not None  # noqa: S101 - set just above
    return "".join(env.loader.get_source(env, name)[0] for name in ("socialguard.css", "admin.css"))


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _transport_ok(request: Request) -> bool:
    """HTTPS, or plain HTTP from this machine: the only ways a cookie may travel."""
    return request.url.scheme == "https" or is_loopback(_client(request))


Handler = Callable[[Request], Awaitable[Response]]


class Page:
    """The request handlers, sharing the state made at start."""

    def __init__(self, state: AdminState) -> None:
        self.state = state
        self.settings = state.context.settings
        self.catalog = state.context.catalog

    # -- rendering and cookies -------------------------------------------------------------

    def render(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        values.setdefault("user", None)
        values.setdefault("csrf", "")
        values.setdefault("title", "Social media exemptions")
        values["practice"] = self.settings.practice.name
        # A field without an error reads as "" (the templates are strict about anything else).
        values["errors"] = collections.defaultdict(str, values.get("errors") or {})
        html = environment().get_template(template).render(values)
        return HTMLResponse(html, status_code=status)

    def message(
        self, request: Request, status: int, title: str, text: str, **values: Any
    ) -> HTMLResponse:
        values.setdefault("link", "/")
        values.setdefault("link_text", "Back to the overview")
        return self.render(
            request, "admin-message.html", status, title=title, message=text, **values
        )

    def _set_cookie(
        self, request: Request, response: Response, name: str, value: str, max_age: int
    ) -> None:
        if not _transport_ok(request):
            return  # never over plain HTTP beyond this machine
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )

    def record(self, request: Request, event: str, **fields: Any) -> None:
        self.state.log.record(event, {"client_ip": _client(request), **fields})

    # -- who is asking ---------------------------------------------------------------------

    def _visitor(self, request: Request) -> tuple[str, bool]:
        """This browser's visitor id, and whether it is new (and needs its cookie set)."""
        known = self.state.signer.visitor(request.cookies.get(VISITOR_COOKIE))
        if known is not None:
            return known, False
        fresh = self.state.signer.new_visitor()
        value = self.state.signer.visitor(fresh)
        assert value is not None  # noqa: S101 - we just signed it
        request.state.new_visitor = fresh
        return value, True

    def _anon_page(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> Response:
        """A page with an anonymous form: its token bound to the visitor cookie."""
        visitor, fresh = self._visitor(request)
        response = self.render(
            request, template, status, csrf=self.state.signer.token(f"v|{visitor}"), **values
        )
        if fresh:
            self._set_cookie(request, response, VISITOR_COOKIE, request.state.new_visitor, 86400)
        return response

    def _approvers(self) -> frozenset[str]:
        return actions.load(self.state.context).approvers

    def session(self, request: Request) -> Session | Response:
        """The signed-in approver, or where to send the browser instead."""
        try:
            session = self.state.signer.session(request.cookies.get(SESSION_COOKIE))
        except SessionExpiredError as expired:
            self.record(request, events.SESSION_EXPIRED, user=expired.user or None)
            response = RedirectResponse("/sign-in?expired=1", status_code=303)
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        if session is None:
            return RedirectResponse("/sign-in", status_code=303)
        try:
            approvers = self._approvers()
        except ActionRefusedError as error:
            return self.message(
                request, 503, "The authorisation list cannot be read", error.message
            )
        if session.user not in approvers:
            response = RedirectResponse("/sign-in", status_code=303)
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        return session

    def signed_in(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        session: Session = request.state.session
        return self.render(
            request,
            template,
            status,
            user=session.user,
            csrf=self.state.signer.token(f"s|{session.sid}"),
            **values,
        )

    async def form(self, request: Request) -> Mapping[str, str]:
        """The posted fields (text only); nothing at all from an oversized body."""
        try:
            declared = int(request.headers.get("content-length") or 0)
        except ValueError:
            return {}
        if declared > MAX_FORM_BYTES:
            return {}
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return {}
        data = await request.form()
        return {k: v for k, v in data.items() if isinstance(v, str)}

    def csrf_refused(self, request: Request, given: str | None, user: str | None) -> Response:
        self.record(
            request,
            events.FORBIDDEN,
            user=user,
            path=request.url.path,
            why="the form's token was missing" if not given else "the form's token was wrong",
        )
        return self.message(
            request,
            403,
            "That form had expired",
            "The form was not accepted because its security token was missing or out of date. "
            "Go back, reload the page and try again.",
        )

    # -- sign in and out -------------------------------------------------------------------

    async def sign_in_page(self, request: Request) -> Response:
        notice = None
        if request.query_params.get("expired"):
            notice = "Your session ended: please sign in again."
        if not _transport_ok(request):
            return self.render(
                request, "admin-signin.html", 403, title="Sign in", notice=None, error=NEEDS_HTTPS,
                can_sign_in=False, username="",
            )  # fmt: skip
        return self._anon_page(
            request, "admin-signin.html", title="Sign in", notice=notice, error=None,
            can_sign_in=True, username="",
        )  # fmt: skip

    async def sign_in(self, request: Request) -> Response:
        form = await self.form(request)
        name = form.get("username", "").strip()
        if not _transport_ok(request):
            self.record(request, events.SIGNIN_FAILED, user=name or None, why="plain HTTP")
            return await self.sign_in_page(request)
        visitor = self.state.signer.visitor(request.cookies.get(VISITOR_COOKIE))
        given = form.get(CSRF_FIELD)
        if not self.state.signer.token_ok(f"v|{visitor}" if visitor else None, given):
            return self.csrf_refused(request, given, name or None)
        address = _client(request)

        def again(status: int, error: str) -> Response:
            return self._anon_page(
                request, "admin-signin.html", status, title="Sign in", notice=None, error=error,
                can_sign_in=True, username=name,
            )  # fmt: skip

        limited = self.state.limiter.blocked(address, name)
        if limited is not None:
            self.record(request, events.SIGNIN_LIMITED, user=name or None, why=limited)
            return again(
                429,
                "Too many wrong passwords: sign-in is paused for this account or computer for "
                "15 minutes. If you have forgotten your password, ask IT.",
            )
        try:
            good = await run_in_threadpool(
                check_password, self.state.htpasswd, name, form.get("password", "")
            )
            approvers = self._approvers()
        except (PasswordFileError, ActionRefusedError) as error:
            return self.message(request, 503, "Sign-in is not possible just now", str(error))
        if not good or name not in approvers:
            self.state.limiter.failed(address, name)
            why = "wrong name or password" if not good else "not an approver"
            self.record(request, events.SIGNIN_FAILED, user=name or None, why=why)
            return again(
                401,
                "Sign-in refused: the name or password is wrong, or this account is not one of "
                "the practice's approvers (the approvers: list of the authorisation list).",
            )
        self.record(request, events.SIGNED_IN, user=name)
        response = RedirectResponse("/", status_code=303)
        self._set_cookie(
            request,
            response,
            SESSION_COOKIE,
            self.state.signer.new_session(name),
            max(1, int(self.state.signer.session_seconds)),
        )
        return response

    async def sign_out(self, request: Request) -> Response:
        session = request.state.session
        self.record(request, events.SIGNED_OUT, user=session.user)
        self.state.signer.end(session)
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- the overview ----------------------------------------------------------------------

    def _rows(self) -> tuple[list[ExemptionRow], tuple[str, ...]]:
        context = self.state.context
        authorisations = actions.load(context)
        rows = exemption_rows(authorisations, self.catalog, context.now(), context.today())
        return rows, authorisations.warnings

    def _sweep(self, request: Request) -> None:
        for expired in self.state.store.sweep():
            self.record(
                request,
                events.REQUEST_EXPIRED,
                reference=expired.reference,
                service=expired.service,
                who=f"{expired.who_kind} {expired.who}",
            )

    def _request_who(self, r: StaffRequest) -> str:
        if r.who_kind == "name":
            return f"{r.who} (name given; not signed in to the proxy)"
        return r.who if r.who_kind == "user" else f"{r.who_kind} {r.who}"

    def _local(self, iso: str) -> str:
        try:
            when = dt.datetime.fromisoformat(iso).astimezone(self.settings.timezone)
        except ValueError:
            return iso
        return f"{when.day} {when:%b %Y %H:%M}"

    async def overview(self, request: Request, done: str | None = None) -> Response:
        try:
            rows, warnings = self._rows()
        except ActionRefusedError as error:
            return self.message(
                request, 503, "The authorisation list cannot be read", error.message
            )
        self._sweep(request)
        now = self.state.context.now()
        pending = [
            {
                "reference": r.reference,
                "who": self._request_who(r),
                "service": service_name(self.catalog, r.service),
                "purpose": r.purpose,
                "asked": self._local(r.requested_at),
            }
            for r in self.state.store.all()
            if r.state(now) == PENDING
        ]
        search = {
            k: request.query_params.get(k, "").strip()[:100] for k in ("ref", "person", "service")
        }
        blocks = await run_in_threadpool(
            latest_blocks,
            self.state.proxy_audit,
            self.catalog,
            self.settings.timezone,
            now,
            reference=search["ref"],
            person=search["person"],
            service=search["service"],
        )
        caption = (
            "Blocks matching the search"
            if any(search.values())
            else "Blocks in the last 30 days, newest first (at most 50)"
        )
        return self.signed_in(
            request,
            "admin-overview.html",
            title="Overview",
            done=done,
            warnings=warnings,
            requests=pending,
            exemptions=rows,
            overdue=sum(r.review_overdue for r in rows),
            ending=sum(r.ending_soon for r in rows),
            search=search,
            blocks=blocks,
            blocks_caption=caption,
        )

    # -- grant -----------------------------------------------------------------------------

    def _services(self) -> list[tuple[str, str]]:
        return sorted(
            ((s.id, s.name) for s in self.catalog.services.values()), key=lambda p: p[1].lower()
        )

    def _grant_form(
        self, request: Request, form: dict[str, str], status: int = 200, **values: Any
    ) -> Response:
        values.setdefault("errors", {})
        values.setdefault("refused", None)
        values.setdefault("problems", [])
        values.setdefault("source", None)
        return self.signed_in(
            request, "admin-grant.html", status, title="Grant an exemption", form=form,
            services=self._services(), **values,
        )  # fmt: skip

    def _prefill(self, reference: str, request_ref: str) -> tuple[dict[str, str], str | None]:
        form = {"kind": "user", "who": "", "service": "", "purpose": "", "until": "",
                "ref": "", "request": ""}  # fmt: skip
        if request_ref:
            r = self.state.store.get(actions.normal_reference(request_ref))
            if r is None:
                raise ActionRefusedError(f"no request {request_ref}")
            form.update(
                kind="user" if r.who_kind == "name" else r.who_kind,
                who=r.who,
                service=r.service,
                purpose=r.purpose,
                request=r.reference,
            )
            return form, (
                f"Approving request {r.reference}: choose the last day, check the details, "
                "and grant."
            )
        if reference:
            kind, who, service = actions.grant_from_event(
                reference, self.state.proxy_audit, find_block
            )
            ref = actions.normal_reference(reference)
            form.update(kind=kind, who=who, service=service, ref=ref)
            return form, f"From block {ref}: {who}, {service_name(self.catalog, service)}."
        return form, None

    async def grant_page(self, request: Request) -> Response:
        try:
            form, source = self._prefill(
                request.query_params.get("ref", ""), request.query_params.get("request", "")
            )
        except ActionRefusedError as error:
            form, _ = self._prefill("", "")
            return self._grant_form(request, form, 404, refused=error.message)
        return self._grant_form(request, form, source=source)

    async def grant(self, request: Request) -> Response:
        session: Session = request.state.session
        raw = await self.form(request)
        form = {k: raw.get(k, "").strip() for k in
                ("kind", "who", "service", "purpose", "until", "ref", "request")}  # fmt: skip
        errors: dict[str, str] = {}
        if form["kind"] not in ("user", "device", "group"):
            errors["kind"] = "choose a person, a device or a group"
        if not form["who"]:
            errors["who"] = "say who it is for"
        if form["service"] not in self.catalog.services:
            errors["service"] = "choose a service from the list"
        if not form["purpose"]:
            errors["purpose"] = "say what it is needed for, in a sentence"
        context = self.state.context
        expires: dt.date | dt.datetime | None = None
        try:
            expires = actions.parse_until(form["until"] or None, None, context)
        except FieldError as error:
            errors[error.field] = error.message
        except UsageProblemError:
            errors["until"] = "say until when: a date like 2027-10-31, or a time today like 17:00"
        if errors or expires is None:
            return self._grant_form(request, form, 400, errors=errors)
        new = actions.new_exemption(
            context,
            kind=form["kind"],
            who=form["who"],
            services=(form["service"],),
            purpose=form["purpose"],
            approved_by=session.user,
            expires=expires,
            system_user=actions.system_user(),
        )
        try:
            result = await run_in_threadpool(actions.grant, context, new)
            if form["request"]:
                self.state.store.answer(
                    form["request"],
                    status=APPROVED,
                    answered_by=session.user,
                    answered_at=context.now().isoformat(),
                    exemption_id=result.result,
                    until=actions.label(expires),
                )
        except ActionRefusedError as error:
            self.record(request, events.ACTION_REFUSED, user=session.user, action="grant",
                        why=error.message)  # fmt: skip
            return self._grant_form(
                request, form, 400, refused=error.message, problems=[str(p) for p in error.problems]
            )
        except RequestError as error:
            return self._grant_form(request, form, 409, refused=str(error))
        self.record(
            request,
            events.GRANTED,
            user=session.user,
            exemption_id=result.result,
            who=f"{new.who_kind} {new.who}",
            services=list(new.services),
            purpose=new.purpose,
            expires=str(expires),
            reference=form["ref"] or form["request"] or None,
        )
        text = actions.granted_text(result.result, new, form["ref"] or form["request"] or None)
        return await self.overview(request, done=text)

    # -- renew and revoke ------------------------------------------------------------------

    def _row(self, ident: str) -> ExemptionRow | None:
        rows, _ = self._rows()
        return next((r for r in rows if r.id == ident), None)

    async def exemption_page(self, request: Request, status: int = 200, **values: Any) -> Response:
        ident = request.path_params["ident"]
        try:
            row = self._row(ident)
        except ActionRefusedError as error:
            return self.message(
                request, 503, "The authorisation list cannot be read", error.message
            )
        if row is None:
            return self.message(
                request, 404, "No such exemption",
                f"There is no exemption {ident} in force (it may have ended or been revoked).",
            )  # fmt: skip
        values.setdefault("errors", {})
        values.setdefault("form", {"until": "", "reason": ""})
        values.setdefault("refused", None)
        values.setdefault("problems", [])
        return self.signed_in(
            request, "admin-exemption.html", status, title=f"Exemption {ident}", e=row, **values
        )

    async def renew(self, request: Request) -> Response:
        session: Session = request.state.session
        ident = request.path_params["ident"]
        form = {"until": (await self.form(request)).get("until", "").strip(), "reason": ""}
        context = self.state.context
        try:
            expires = actions.parse_until(form["until"] or None, None, context)
            await run_in_threadpool(actions.renew, context, ident, expires, session.user)
        except FieldError as error:
            return await self.exemption_page(
                request, 400, form=form, errors={error.field: error.message}
            )
        except UsageProblemError:
            return await self.exemption_page(
                request, 400, form=form, errors={"until": "say until when: a date like 2027-10-31"}
            )
        except ActionRefusedError as error:
            self.record(request, events.ACTION_REFUSED, user=session.user, action="renew",
                        exemption_id=ident, why=error.message)  # fmt: skip
            return await self.exemption_page(
                request, 400, form=form, refused=error.message,
                problems=[str(p) for p in error.problems],
            )  # fmt: skip
        self.record(request, events.RENEWED, user=session.user, exemption_id=ident,
                    expires=str(expires))  # fmt: skip
        return await self.overview(request, done=actions.renewed_text(ident, expires, session.user))

    async def revoke(self, request: Request) -> Response:
        session: Session = request.state.session
        ident = request.path_params["ident"]
        form = {"until": "", "reason": (await self.form(request)).get("reason", "").strip()}
        context = self.state.context
        try:
            await run_in_threadpool(actions.revoke, context, ident, form["reason"], session.user)
        except FieldError as error:
            return await self.exemption_page(
                request, 400, form=form, errors={error.field: error.message}
            )
        except ActionRefusedError as error:
            self.record(request, events.ACTION_REFUSED, user=session.user, action="revoke",
                        exemption_id=ident, why=error.message)  # fmt: skip
            return await self.exemption_page(
                request, 400, form=form, refused=error.message,
                problems=[str(p) for p in error.problems],
            )  # fmt: skip
        self.record(request, events.REVOKED, user=session.user, exemption_id=ident,
                    reason=form["reason"])  # fmt: skip
        return await self.overview(request, done=actions.revoked_text(ident, form["reason"]))

    # -- requests: the manager's side ------------------------------------------------------

    async def review_request(self, request: Request, status: int = 200, **values: Any) -> Response:
        ref = request.path_params["ref"]
        r = self.state.store.get(ref)
        if r is None:
            return self.message(request, 404, "No such request", f"There is no request {ref}.")
        values.setdefault("errors", {})
        values.setdefault("refused", None)
        values.setdefault("reason", "")
        return self.signed_in(
            request, "admin-review-request.html", status, title=f"Request {ref}", r=r,
            who=self._request_who(r), service=service_name(self.catalog, r.service),
            asked=self._local(r.requested_at), state=r.state(self.state.context.now()), **values,
        )  # fmt: skip

    async def decline(self, request: Request) -> Response:
        session: Session = request.state.session
        ref = request.path_params["ref"]
        reason = (await self.form(request)).get("reason", "").strip()
        if not reason:
            return await self.review_request(
                request, 400, errors={"reason": "say why it is declined"}
            )
        try:
            r = self.state.store.answer(
                ref, status=DECLINED, answered_by=session.user,
                answered_at=self.state.context.now().isoformat(), reason=reason,
            )  # fmt: skip
        except RequestError as error:
            return await self.review_request(request, 409, refused=str(error), reason=reason)
        self.record(request, events.DECLINED, user=session.user, reference=ref,
                    service=r.service, who=f"{r.who_kind} {r.who}", reason=reason)  # fmt: skip
        return await self.overview(request, done=f"declined request {ref} ({reason}).")

    # -- requests: the member of staff's side ----------------------------------------------

    def _block(self, reference: str) -> tuple[str, dict[str, Any] | None]:
        ref = actions.normal_reference(reference)[:40]
        try:
            event = find_block(self.state.proxy_audit, ref)
        except actions.SearchError:
            return ref, None
        if event is None or event.get("event") not in actions.BLOCK_EVENTS:
            return ref, None
        if not event.get("service"):
            return ref, None
        return ref, event

    def _known_person(self, event: dict[str, Any]) -> tuple[str, str] | None:
        user = event.get("user")
        if user and user != actions.ANONYMOUS:
            return "user", str(user)
        if event.get("device"):
            return "device", str(event["device"])
        return None

    def _refuse_request(
        self, request: Request, ref: str, why: str, status: int, text: str
    ) -> Response:
        self.record(request, events.REQUEST_REFUSED, reference=ref, why=why)
        return self.message(request, status, "This request cannot be made", text,
                            link=f"/answer?ref={ref}", link_text="Look up a request")  # fmt: skip

    async def request_page(self, request: Request) -> Response:
        if not _transport_ok(request):
            return self.message(request, 403, "Open this page over HTTPS", NEEDS_HTTPS, link=None)
        ref, event = await run_in_threadpool(self._block, request.query_params.get("ref", ""))
        if event is None:
            return self._refuse_request(
                request, ref, "no such block", 404,
                f"There is no block with the reference {ref}. Check the reference on the block "
                "page and open the link from there.",
            )  # fmt: skip
        if self.state.store.get(ref) is not None:
            return RedirectResponse(f"/answer?ref={ref}", status_code=303)
        return self._request_form(request, ref, event, {"name": "", "purpose": ""})

    def _request_form(
        self, request: Request, ref: str, event: dict[str, Any], form: dict[str, str],
        status: int = 200, errors: dict[str, str] | None = None,
    ) -> Response:  # fmt: skip
        known = self._known_person(event)
        return self._anon_page(
            request, "admin-request.html", status, title="Ask for an exemption", reference=ref,
            service=service_name(self.catalog, event.get("service")), host=event.get("host"),
            who=known[1] if known else None, form=form, errors=errors or {}, refused=None,
        )  # fmt: skip

    async def make_request(self, request: Request) -> Response:
        if not _transport_ok(request):
            return self.message(request, 403, "Open this page over HTTPS", NEEDS_HTTPS, link=None)
        raw = await self.form(request)
        visitor = self.state.signer.visitor(request.cookies.get(VISITOR_COOKIE))
        given = raw.get(CSRF_FIELD)
        if not self.state.signer.token_ok(f"v|{visitor}" if visitor else None, given):
            return self.csrf_refused(request, given, None)
        ref, event = await run_in_threadpool(self._block, raw.get("ref", ""))
        if event is None:
            return self._refuse_request(
                request, ref, "no such block", 404,
                f"There is no block with the reference {ref}: a request can only be made from "
                "a block page, for that block.",
            )  # fmt: skip
        form = {
            "name": raw.get("name", "").strip()[:100],
            "purpose": raw.get("purpose", "").strip()[:2000],
        }
        known = self._known_person(event)
        errors = {}
        if not form["purpose"]:
            errors["purpose"] = "say what you need it for"
        if known is None and not form["name"]:
            errors["name"] = "say who you are"
        if errors:
            return self._request_form(request, ref, event, form, 400, errors)
        kind, who = known if known else ("name", form["name"])
        now = self.state.context.now()
        staff_request = StaffRequest(
            reference=ref,
            who_kind=kind,
            who=who,
            service=str(event["service"]),
            host=str(event.get("host") or ""),
            blocked_at=str(event.get("ts") or ""),
            purpose=form["purpose"],
            requested_at=now.astimezone(dt.UTC).isoformat(),
            expires_at=(now + dt.timedelta(days=self.settings.admin.request_days))
            .astimezone(dt.UTC)
            .isoformat(),
        )
        try:
            self.state.store.add(staff_request)
        except RequestError as error:
            return self._refuse_request(request, ref, "already requested", 409, str(error))
        self.record(
            request, events.REQUESTED, reference=ref, service=staff_request.service,
            who=f"{kind} {who}", person=person_of(event), purpose=staff_request.purpose,
        )  # fmt: skip
        return RedirectResponse(f"/answer?ref={ref}&sent=1", status_code=303)

    async def answer(self, request: Request) -> Response:
        ref = actions.normal_reference(request.query_params.get("ref", ""))[:40]
        r = self.state.store.get(ref)
        if r is None:
            return self.message(
                request, 404, "No request with this reference",
                f"There is no request for {ref}. Requests are made from the block page's "
                "“Ask for an exemption” link.", link=None,
            )  # fmt: skip
        state = r.state(self.state.context.now())
        status_text = REQUEST_STATES[state]
        if state == APPROVED:
            status_text = (
                f"Approved by {r.answered_by} until {r.until} (exemption {r.exemption_id})."
            )
        elif state == DECLINED:
            status_text = f"Declined by {r.answered_by}."
        return self.render(
            request, "admin-answer.html", title=f"Request {ref}", reference=ref,
            service=service_name(self.catalog, r.service), status_text=status_text,
            reason=r.reason if state == DECLINED else None,
            sent=bool(request.query_params.get("sent")),
        )  # fmt: skip

    async def style(self, request: Request) -> Response:
        """The block page's styles and the page's own, as one file."""
        return Response(_css(), media_type="text/css", headers={"cache-control": "max-age=3600"})


def _guarded(page: Page, handler: Handler, *, post: bool) -> Handler:
    """Only for a signed-in approver; a POST also needs its session's form token."""

    async def guarded(request: Request) -> Response:
        session = page.session(request)
        if isinstance(session, Response):
            if post and not isinstance(session, RedirectResponse):
                return session
            if post:  # an expired or missing session posting a form: recorded, refused
                page.record(
                    request, events.FORBIDDEN, user=None, path=request.url.path,
                    why="not signed in (or the session ended)",
                )  # fmt: skip
                return page.message(
                    request, 403, "Please sign in again",
                    "Your session ended, so the form was not accepted. Sign in and try again.",
                    link="/sign-in", link_text="Sign in",
                )  # fmt: skip
            return session
        request.state.session = session
        if post:
            form = await page.form(request)
            given = form.get(CSRF_FIELD)
            if not page.state.signer.token_ok(f"s|{session.sid}", given):
                return page.csrf_refused(request, given, session.user)
        return await handler(request)

    return guarded


def create_app(state: AdminState, names: PageNames) -> Starlette:
    """The page's routes behind its checks: Host first (DNS rebinding), headers on every answer."""
    page = Page(state)

    def signed(handler: Handler, post: bool = False) -> Handler:
        return _guarded(page, handler, post=post)

    routes = [
        Route("/", signed(page.overview), methods=["GET"]),
        Route("/style.css", page.style, methods=["GET"]),
        Route("/sign-in", page.sign_in_page, methods=["GET"]),
        Route("/sign-in", page.sign_in, methods=["POST"]),
        Route("/sign-out", signed(page.sign_out, post=True), methods=["POST"]),
        Route("/grant", signed(page.grant_page), methods=["GET"]),
        Route("/grant", signed(page.grant, post=True), methods=["POST"]),
        Route("/exemptions/{ident}", signed(page.exemption_page), methods=["GET"]),
        Route("/exemptions/{ident}/renew", signed(page.renew, post=True), methods=["POST"]),
        Route("/exemptions/{ident}/revoke", signed(page.revoke, post=True), methods=["POST"]),
        Route("/requests/{ref}", signed(page.review_request), methods=["GET"]),
        Route("/requests/{ref}/decline", signed(page.decline, post=True), methods=["POST"]),
        Route("/request", page.request_page, methods=["GET"]),
        Route("/request", page.make_request, methods=["POST"]),
        Route("/answer", page.answer, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(HostCheck, names=names)  # inside SecurityHeaders: a refusal gets them too
    app.add_middleware(SecurityHeaders)
    return app
