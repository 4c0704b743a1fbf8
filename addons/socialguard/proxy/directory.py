"""Staff sign in with their directory account (`identity.ldap`: Active Directory or OpenLDAP).

The password a browser sends in `Proxy-Authorization` (Basic: mitmproxy speaks no Kerberos or
NTLM) is checked by binding to the directory as that user, in a thread pool, never on the
event loop: a directory that is slow or down holds up only the sign-ins waiting for it, for
at most `timeout_seconds`, and is then a clear 407 with an event. The server's certificate is
always checked against `ca_file` (with the host name); there is no "unverified" setting.
Successes are remembered for a while under a keyed hash (never the password), with the
user's directory groups, which join the policy's groups (`group: reception` in an exemption).
Repeated wrong passwords for one name are refused without asking the directory for a while:
a browser retrying a stale password must not lock the account in Active Directory.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import hashlib
import hmac
import html
import logging
import secrets
import ssl
import time
import weakref
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars
from mitmproxy import connection, http
from mitmproxy.addons import proxyauth

from socialguard.core.directory import LdapSettings, groups_of
from socialguard.core.events import Event

logger = logging.getLogger(__name__)

# Flow metadata key: the signed-in user's directory groups, mapped to socialguard groups.
DIRECTORY_GROUPS = "socialguard_directory_groups"
CACHE_SIZE = 4096
CACHE_SECONDS = 300.0
FAILURES_ALLOWED = 5  # wrong passwords for one name within FAILURE_WINDOW before a pause
FAILURE_WINDOW = 60.0
UNAVAILABLE_EVENT_EVERY = 60.0  # while the directory is down, one event a minute at most
THREADS = 4


class DirectoryUnavailableError(Exception):
    """The directory could not be asked (down, too slow, or its certificate not trusted)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the directory said about one name and password."""

    ok: bool
    groups: frozenset[str] = frozenset()


class DirectoryClient:
    """Checks one name and password against the directory; blocking, run in a thread."""

    def __init__(self, settings: LdapSettings, bind_password: str) -> None:
        self.settings = settings
        self._bind_password = bind_password

    def _server(self) -> ldap3.Server:
        """A new Server each time: ldap3 marks an address that failed once as unavailable for
        a while, which would keep refusing sign-ins after the directory is back."""
        settings = self.settings
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED,  # never unverified: a fake server would get passwords
            ca_certs_file=str(settings.ca_file),
            sni=settings.host,
            # ldap3 then checks the certificate's names against the url's host itself (only
            # DNS names: write the domain controller's name, as on its certificate).
        )
        return ldap3.Server(
            settings.host,
            port=settings.port,
            use_ssl=settings.use_ssl,
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=settings.timeout_seconds,
        )

    def _connection(self, user: str, password: str) -> ldap3.Connection:
        return ldap3.Connection(
            self._server(),
            user=user,
            password=password,
            receive_timeout=int(self.settings.timeout_seconds),  # ldap3 packs it as an int
            read_only=True,
            raise_exceptions=False,
        )

    def _open(self, user: str, password: str) -> tuple[ldap3.Connection, bool]:
        conn = self._connection(user, password)
        conn.open()
        if self.settings.starttls:
            conn.start_tls()
        return conn, bool(conn.bind())

    def check(self, username: str, password: str) -> Outcome:
        """Bind as the service account, find the user, bind as the user. Raises
        DirectoryUnavailableError when the directory cannot give an answer."""
        if not username or not password:
            # An empty password is an "unauthenticated bind", which LDAP servers accept.
            return Outcome(ok=False)
        try:
            service, bound = self._open(self.settings.bind_dn, self._bind_password)
            try:
                if not bound:
                    raise DirectoryUnavailableError(
                        "the directory refused socialguard's own account "
                        f"({self.settings.bind_dn}): check bind_dn and bind_password_file"
                    )
                found = service.search(
                    self.settings.base_dn,
                    self.settings.user_filter.replace("{user}", escape_filter_chars(username)),
                    search_scope=ldap3.SUBTREE,
                    attributes=["memberOf"],
                    size_limit=2,
                )
                entries = list(service.entries) if found else []
            finally:
                service.unbind()
            if len(entries) != 1:
                return Outcome(ok=False)  # unknown (or ambiguous) name
            entry = entries[0]
            member_of = [str(v) for v in entry["memberOf"].values] if "memberOf" in entry else []
            user_conn, ok = self._open(entry.entry_dn, password)
            user_conn.unbind()
        except ldap_errors.LDAPException as error:
            raise DirectoryUnavailableError(_plain(error)) from None
        if not ok:
            return Outcome(ok=False)
        return Outcome(ok=True, groups=groups_of(self.settings, member_of))


def _plain(error: Exception) -> str:
    text = str(error)
    if "certificate" in text.lower():
        return (
            "the directory's certificate could not be verified with ca_file (wrong CA, expired, "
            f"or issued for another name): {text}"
        )
    return f"the directory did not answer: {text}"


class _Remembered:
    """Verified sign-ins under a keyed hash, bounded in size and time; and recent failures."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._key = secrets.token_bytes(32)
        self._clock = clock
        self._verified: collections.OrderedDict[bytes, tuple[float, frozenset[str]]] = (
            collections.OrderedDict()
        )
        self._failures: dict[str, collections.deque[float]] = {}

    def digest(self, username: str, password: str) -> bytes:
        message = username.encode() + b"\0" + password.encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def clear(self) -> None:
        self._verified.clear()
        self._failures.clear()

    def get(self, key: bytes) -> frozenset[str] | None:
        found = self._verified.get(key)
        if found is None:
            return None
        if found[0] <= self._clock():
            del self._verified[key]
            return None
        self._verified.move_to_end(key)
        return found[1]

    def remember(self, key: bytes, groups: frozenset[str]) -> None:
        self._verified[key] = (self._clock() + CACHE_SECONDS, groups)
        if len(self._verified) > CACHE_SIZE:
            self._verified.popitem(last=False)

    def failed(self, username: str) -> int:
        now = self._clock()
        recent = self._failures.setdefault(username.lower(), collections.deque())
        recent.append(now)
        while recent and recent[0] <= now - FAILURE_WINDOW:
            recent.popleft()
        if len(self._failures) > CACHE_SIZE:
            self._failures.pop(next(iter(self._failures)))
        return len(recent)

    def throttled(self, username: str) -> bool:
        recent = self._failures.get(username.lower())
        if not recent:
            return False
        now = self._clock()
        while recent and recent[0] <= now - FAILURE_WINDOW:
            recent.popleft()
        return len(recent) >= FAILURES_ALLOWED


class DirectorySignIn:
    """The mitmproxy addon: Basic proxy sign-in checked against the directory.

    `settings` gives the LdapSettings in force (a reload may change them, or remove them:
    then this addon does nothing and mitmproxy's own `proxyauth`, if set, applies).
    """

    def __init__(
        self,
        settings: Callable[[], LdapSettings | None],
        audit: Any,
        contact: Callable[[], str] = lambda: "the Practice Manager",
        clock: Callable[[], float] = time.monotonic,
        read_password: Callable[[LdapSettings], str] | None = None,
    ) -> None:
        self._settings = settings
        self._audit = audit
        self._contact = contact
        self._clock = clock
        self._read_password = read_password or (
            lambda s: s.bind_password_file.read_text(encoding="utf-8").strip()
        )
        self._client: DirectoryClient | None = None
        self._remembered = _Remembered(clock)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=THREADS, thread_name_prefix="socialguard-directory"
        )
        self._pending: dict[bytes, asyncio.Future[Outcome]] = {}
        self._last_unavailable_event = -UNAVAILABLE_EVENT_EVERY
        self._unavailable_since_event = 0
        self.authenticated: MutableMapping[connection.Client, tuple[str, frozenset[str]]] = (
            weakref.WeakKeyDictionary()
        )

    def _client_for(self, settings: LdapSettings) -> DirectoryClient:
        if self._client is None or self._client.settings != settings:
            if self._client is not None:
                self._remembered.clear()  # other directory settings: ask again
            self._client = DirectoryClient(settings, self._read_password(settings))
        return self._client

    def done(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- mitmproxy hooks -------------------------------------------------------------------
    async def http_connect(self, flow: http.HTTPFlow) -> None:
        settings = self._settings()
        if settings is None or flow.response is not None:
            return
        signed_in = await self._guarded(flow, settings)
        if signed_in is not None:
            self.authenticated[flow.client_conn] = signed_in

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        settings = self._settings()
        if settings is None or flow.response is not None:
            return
        known = self.authenticated.get(flow.client_conn)
        if known is not None:
            flow.metadata["proxyauth"] = (known[0], "")
            flow.metadata[DIRECTORY_GROUPS] = known[1]
        elif not flow.is_replay:
            await self._guarded(flow, settings)

    async def _guarded(
        self, flow: http.HTTPFlow, settings: LdapSettings
    ) -> tuple[str, frozenset[str]] | None:
        """_authenticate, failing closed: an unexpected error is a refusal, never a pass."""
        try:
            return await self._authenticate(flow, settings)
        except Exception:
            logger.exception("socialguard: directory sign-in failed; refusing")
            flow.response = self._refusal(
                proxyauth.is_http_proxy(flow),
                "Your sign-in could not be checked (an error in socialguard). Try again; if it "
                f"goes on, tell {self._contact()}.",
            )
            return None

    # -- the check -------------------------------------------------------------------------
    async def _authenticate(
        self, flow: http.HTTPFlow, settings: LdapSettings
    ) -> tuple[str, frozenset[str]] | None:
        is_proxy = proxyauth.is_http_proxy(flow)
        header = proxyauth.http_auth_header(is_proxy)
        try:
            _scheme, username, password = proxyauth.parse_http_basic_auth(
                flow.request.headers.get(header, "")
            )
        except ValueError:
            flow.response = self._refusal(is_proxy, None)
            return None
        key = self._remembered.digest(username, password)
        groups = self._remembered.get(key)
        if groups is None:
            if self._remembered.throttled(username):
                flow.response = self._refusal(
                    is_proxy,
                    "Too many wrong passwords for this name: wait a minute, then sign in "
                    "again with your practice (Windows) password.",
                )
                return None
            try:
                outcome = await self._ask(key, settings, username, password)
            except DirectoryUnavailableError as error:
                self._unavailable(flow, str(error))
                flow.response = self._refusal(
                    is_proxy,
                    "Your sign-in cannot be checked just now: the practice directory (Active "
                    "Directory) is not answering. Try again in a few minutes; if it goes on, "
                    f"tell {self._contact()}.",
                )
                return None
            if not outcome.ok:
                if self._remembered.failed(username) == FAILURES_ALLOWED:
                    self._record(
                        Event.SIGNIN_THROTTLED,
                        flow,
                        user=username,
                        detail=f"{FAILURES_ALLOWED} wrong passwords within "
                        f"{int(FAILURE_WINDOW)} s: sign-in for this name paused for a minute",
                    )
                flow.response = self._refusal(is_proxy, None)
                return None
            groups = outcome.groups
            self._remembered.remember(key, groups)
        flow.metadata["proxyauth"] = (username, "")
        flow.metadata[DIRECTORY_GROUPS] = groups
        del flow.request.headers[header]
        return username, groups

    async def _ask(
        self, key: bytes, settings: LdapSettings, username: str, password: str
    ) -> Outcome:
        """One directory look-up per name and password at a time: connections opened together
        by a browser share it."""
        pending = self._pending.get(key)
        if pending is None:
            loop = asyncio.get_running_loop()
            try:
                client = self._client_for(settings)
            except OSError as error:
                raise DirectoryUnavailableError(
                    f"cannot read bind_password_file: {error.strerror or error}"
                ) from None
            pending = asyncio.ensure_future(
                loop.run_in_executor(self._pool, client.check, username, password)
            )
            self._pending[key] = pending
            pending.add_done_callback(lambda _f: self._pending.pop(key, None))
        return await asyncio.shield(pending)

    def _unavailable(self, flow: http.HTTPFlow, detail: str) -> None:
        self._unavailable_since_event += 1
        now = self._clock()
        if now - self._last_unavailable_event < UNAVAILABLE_EVENT_EVERY:
            return
        self._last_unavailable_event = now
        refused, self._unavailable_since_event = self._unavailable_since_event, 0
        logger.warning("socialguard: directory sign-in: %s", detail)
        self._record(Event.SIGNIN_DIRECTORY_UNAVAILABLE, flow, refused=refused, detail=detail)

    def _record(self, event: Event, flow: http.HTTPFlow, **fields: Any) -> None:
        try:
            self._audit.record(event, {"client_ip": flow.client_conn.peername[0], **fields})
        except OSError:
            logger.exception("socialguard: could not record %s", event)

    def _refusal(self, is_proxy: bool, message: str | None) -> http.Response:
        """407 (or 401 for a transparently redirected request) asking for a sign-in again."""
        response = proxyauth.make_auth_required_response(is_proxy)
        if message is not None:
            response.text = (
                "<html><head><title>Sign-in needed</title></head><body><h1>Sign-in needed"
                f"</h1><p>{html.escape(message)}</p></body></html>"
            )
            response.headers["content-type"] = "text/html; charset=utf-8"
        return response
