"""`ansim serve`'s web application: the review console (server-rendered, Jinja2) and the
HMA-compatible JSON API, on one Starlette app that owns the Workspace.

Every route declares the least role it needs (`guarded`); the wrapper resolves who is
asking (session cookie or Bearer token), refuses the rest, checks the CSRF token of every
state-changing request made with a cookie, rate-limits partners, and runs the handler in
a worker thread with a Workspace whose actor is the signed-in account.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import ipaddress
import os
import random
import re
import secrets
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ansim.casework import cases, confirmations, queue
from ansim.casework.errors import CaseworkError, NotFound
from ansim.casework.workspace import Workspace
from ansim.server import accounts, hma_service, review
from ansim.server.accounts import LoginRefused, Principal
from ansim.server.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    LoginThrottle,
    RateLimiter,
    RevealTickets,
    Sessions,
    SessionState,
    same_token,
)
from ansim.server.hma_service import ApiError
from ansim.store import audit
from ansim.store.tables import TAKEDOWN_STATUSES, AuditEntry
from ansim.store.vocabulary import CASE_TYPES
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartParser
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Uploads stay in memory up to this size instead of spilling into /tmp in plaintext.
MultiPartParser.spool_max_size = 64 << 20
MAX_UPLOAD_BYTES = 64 << 20
TOKEN_USE_EVERY_S = 60.0
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
ROLE_ORDER = ("partner", "analyst", "supervisor", "admin")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Bidirectional and other invisible controls are shown, never obeyed, in untrusted text.
_INVISIBLE = {
    c: f"\u27e6U+{c:04X}\u27e7"
    for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]
}


@dataclass
class ServerSettings:
    secure_cookies: bool = False  # set when serving TLS (or behind a TLS proxy)
    idle_timeout_s: float = 30 * 60
    hma_no_auth: bool = False  # honoured only for loopback callers
    partner_rate: float = 50.0
    partner_burst: float = 100.0
    login_attempts_per_source: int = 10
    allow_loopback_fetch: bool = False  # /h/hash?url= to 127.0.0.1 (tests)
    break_after_reveals: int = 20
    review_defaults: accounts.ReviewSettings = field(default_factory=accounts.ReviewSettings)


@dataclass
class ServerState:
    workspace: Workspace
    settings: ServerSettings
    sessions: Sessions
    throttle: LoginThrottle
    limiter: RateLimiter
    tickets: RevealTickets = field(default_factory=RevealTickets)
    index_ready: threading.Event = field(default_factory=threading.Event)
    index_error: str | None = None
    lookups: hma_service.LookupAudit = field(default_factory=hma_service.LookupAudit)
    _token_seen: dict[str, float] = field(default_factory=dict)

    def token_use_due(self, token: str) -> bool:
        """Whether to record this token's use now (once a minute, not on every request)."""
        now = time.monotonic()
        if now - self._token_seen.get(token, -TOKEN_USE_EVERY_S) < TOKEN_USE_EVERY_S:
            return False
        self._token_seen[token] = now
        return True

    def as_actor(self, principal: Principal) -> Workspace:
        return dataclasses.replace(self.workspace, actor=principal.name)


@dataclass
class Ctx:
    """What a handler gets: who asks, their session (console), the parsed form."""

    principal: Principal
    session: SessionState | None
    form: FormData | None
    json: Any
    workspace: Workspace
    state: ServerState


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("ansim.server", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["plain"] = lambda value: "" if value is None else str(value).translate(_INVISIBLE)
    env.filters["when"] = lambda moment: moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""
    return env


TEMPLATES = _templates()


def render(name: str, ctx: Ctx | None, http_status: int = 200, **values: Any) -> HTMLResponse:
    principal = ctx.principal if ctx else None
    csrf = ctx.session.csrf if ctx and ctx.session else ""
    html = TEMPLATES.get_template(name).render(user=principal, csrf=csrf, **values)
    return HTMLResponse(html, status_code=http_status)


def api_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def _is_loopback(request: Request) -> bool:
    try:
        return ipaddress.ip_address(request.client.host if request.client else "").is_loopback
    except ValueError:
        return False


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def permitted(principal: Principal, role: str) -> bool:
    if role == "partner":
        return principal.role in ROLE_ORDER
    return principal.at_least(role)


def _identify(state: ServerState, request: Request) -> tuple[Principal | None, SessionState | None]:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None, None
        principal = accounts.authenticate_token(state.workspace, token.strip())
        if principal is not None and state.token_use_due(token.strip()):
            accounts.touch_token(state.workspace, token.strip())
        return principal, None
    session = state.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None, None
    principal = accounts.principal_for(state.workspace, session.account_id)
    if principal is None:
        state.sessions.end(request.cookies.get(SESSION_COOKIE))
        return None, None
    return principal, session


def _anonymous_allowed(state: ServerState, request: Request, role: str) -> bool:
    """No-auth HMA mode: switched on, a partner-level route, a loopback caller, no header."""
    return (
        role == "partner"
        and state.settings.hma_no_auth
        and _is_loopback(request)
        and "authorization" not in request.headers
    )


def _too_large(request: Request) -> bool:
    """Over the limit, or a body of unstated length (chunked): past the parser's spool size
    an upload would be written to a temporary file on disk, and it may be victim media."""
    length = request.headers.get("content-length")
    if length is None:
        return "chunked" in request.headers.get("transfer-encoding", "").lower()
    return not length.isdigit() or int(length) > MAX_UPLOAD_BYTES + (1 << 20)


Handler = Callable[[Request, Ctx], Response]


def guarded(role: str, api: bool = False) -> Callable[[Handler], Callable[[Request], Any]]:
    """Wrap a sync handler: authenticate, authorize (`role` at least), CSRF, rate limit."""

    def wrap(handler: Handler) -> Callable[[Request], Any]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            state: ServerState = request.app.state.server
            principal, session = await run_in_threadpool(_identify, state, request)
            if principal is None and _anonymous_allowed(state, request, role):
                principal = Principal(0, "hma-anonymous", "partner", "anonymous")
            if principal is None:
                if api:
                    return api_error(401, "authentication required (Bearer token)")
                target = quote(request.url.path, safe="/")
                return RedirectResponse(f"/login?next={target}", status_code=303)
            if not permitted(principal, role):
                if api:
                    return api_error(403, f"needs the {role} role")
                return HTMLResponse(
                    TEMPLATES.get_template("error.html.j2").render(
                        user=principal,
                        csrf="",
                        status=403,
                        message=f"This page needs the {role} role.",
                    ),
                    status_code=403,
                )
            if principal.role == "partner":
                wait = state.limiter.take(principal.name)
                if wait:
                    return api_error(
                        429, "rate limit exceeded", {"Retry-After": str(int(wait) + 1)}
                    )
            form = body = None
            if _too_large(request):
                return api_error(413, f"requests are limited to {MAX_UPLOAD_BYTES >> 20} MiB")
            if request.method not in SAFE_METHODS:
                content_type = request.headers.get("content-type", "")
                if content_type.startswith(
                    ("multipart/form-data", "application/x-www-form-urlencoded")
                ):
                    form = await request.form(max_files=2, max_fields=50)
                elif content_type.startswith("application/json"):
                    try:
                        body = await request.json()
                    except ValueError:
                        return api_error(400, "the body is not valid JSON")
                if session is not None:
                    given = request.headers.get(CSRF_HEADER) or (
                        form.get(CSRF_FIELD) if form else None
                    )
                    if not same_token(given if isinstance(given, str) else None, session.csrf):
                        if api:
                            return api_error(403, "missing or wrong CSRF token")
                        return render(
                            "error.html.j2",
                            None,
                            403,
                            status=403,
                            message="The form expired: go back, reload and try again.",
                        )
            ctx = Ctx(principal, session, form, body, state.as_actor(principal), state)
            try:
                return await run_in_threadpool(handler, request, ctx)
            except ApiError as exc:
                return api_error(exc.status, exc.message)
            except NotFound as exc:
                return (
                    api_error(404, str(exc))
                    if api
                    else render("error.html.j2", ctx, 404, status=404, message=str(exc))
                )
            except CaseworkError as exc:
                return (
                    api_error(400, str(exc))
                    if api
                    else render("error.html.j2", ctx, 400, status=400, message=str(exc))
                )
            finally:
                if form is not None:
                    await form.close()

        endpoint.required_role = role  # type: ignore[attr-defined]
        endpoint.is_api = api  # type: ignore[attr-defined]
        return endpoint

    return wrap


# --- Sign-in ------------------------------------------------------------------------------


_LOCAL_PATH = re.compile(r"^/(?![/\\])[A-Za-z0-9/_.~%?=&-]*$")


def _safe_next(target: str | None) -> str:
    """Only a plain local path: no scheme, host, backslash, whitespace or control
    characters (browsers drop tabs and newlines, so a slash, a tab and a slash would
    become `//host`)."""
    if target and _LOCAL_PATH.match(target):
        return target
    return "/queue"


def _set_cookie(
    response: Response, state: ServerState, name: str, value: str, path: str = "/"
) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=state.settings.secure_cookies,
        path=path,
    )


async def login_page(request: Request) -> Response:
    state: ServerState = request.app.state.server
    token = secrets.token_urlsafe(32)
    response = render(
        "login.html.j2",
        None,
        login_csrf=token,
        next=_safe_next(request.query_params.get("next")),
        error=None,
    )
    _set_cookie(response, state, LOGIN_CSRF_COOKIE, token, path="/login")
    return response


async def login_submit(request: Request) -> Response:
    state: ServerState = request.app.state.server
    form = await request.form(max_files=0, max_fields=10)
    source = _source(request)
    target = _safe_next(str(form.get("next") or ""))

    def again(message: str, status: int) -> Response:
        token = secrets.token_urlsafe(32)
        response = render(
            "login.html.j2", None, status, login_csrf=token, next=target, error=message
        )
        _set_cookie(response, state, LOGIN_CSRF_COOKIE, token, path="/login")
        return response

    cookie = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not cookie or not same_token(str(form.get(CSRF_FIELD) or ""), cookie):
        return again("The sign-in form expired; try again.", 403)
    if not state.throttle.allowed(source):
        return again("Too many failed sign-ins from here; wait a few minutes.", 429)
    name = str(form.get("name") or "").strip().lower()[:64]
    password = str(form.get("password") or "")
    try:
        principal = await run_in_threadpool(
            accounts.verify_login, state.workspace, name, password, source
        )
    except LoginRefused as exc:
        state.throttle.failed(source)
        return again(str(exc), 401)
    state.throttle.succeeded(source)
    session_id = state.sessions.start(principal.account_id, principal.name)
    response = RedirectResponse(target, status_code=303)
    _set_cookie(response, state, SESSION_COOKIE, session_id)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@guarded("analyst")
def logout(request: Request, ctx: Ctx) -> Response:
    ctx.state.sessions.end(request.cookies.get(SESSION_COOKIE))
    with ctx.workspace.session() as session:
        audit.record(session, ctx.principal.name, "logout", f"user:{ctx.principal.name}")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- Review console -------------------------------------------------------------------------


@guarded("analyst")
def home(request: Request, ctx: Ctx) -> Response:
    return RedirectResponse("/queue", status_code=303)


@guarded("analyst")
def queue_page(request: Request, ctx: Ctx) -> Response:
    wanted = review.QueueFilter.from_query(request.query_params)
    page = review.list_page(ctx.workspace, wanted)
    return render("queue.html.j2", ctx, wanted=wanted, statuses=TAKEDOWN_STATUSES, **page)


@guarded("analyst")
def next_item(request: Request, ctx: Ctx) -> Response:
    takedown_id = review.next_unclaimed(ctx.workspace, ctx.principal.name)
    if takedown_id is None:
        return RedirectResponse("/queue?status=new", status_code=303)
    return RedirectResponse(f"/item/{takedown_id}", status_code=303)


def _item_id(request: Request) -> int:
    try:
        return int(request.path_params["item_id"])
    except ValueError as exc:
        raise NotFound("no such queue item") from exc


@guarded("analyst")
def item_page(
    request: Request, ctx: Ctx, message: str | None = None, status: int = 200
) -> Response:
    takedown_id = _item_id(request)
    facts = review.item_facts(ctx.workspace, takedown_id)
    held = (
        review.claim(ctx.workspace, takedown_id, ctx.principal.name)
        if facts["status"] == "new"
        else {"held": False, "holder": None, "until": None}
    )
    reveals = ctx.session.reveals if ctx.session else 0
    break_due = reveals >= ctx.state.settings.break_after_reveals
    view = _view(ctx)
    return render(
        "item.html.j2",
        ctx,
        status,
        item=facts,
        claim=held,
        reveals=reveals,
        break_due=break_due,
        message=message,
        view=view,
    )


def _view(ctx: Ctx) -> accounts.ReviewSettings:
    """This reviewer's veil settings over the organisation's defaults."""
    defaults = ctx.state.settings.review_defaults
    if ctx.principal.via == "anonymous":
        return defaults
    return accounts.review_settings(ctx.workspace, ctx.principal.name, defaults)


@guarded("analyst")
def settings_page(request: Request, ctx: Ctx) -> Response:
    return render(
        "settings.html.j2", ctx, view=_view(ctx), blurs=accounts.BLUR_LEVELS,
        reveals=accounts.REVEAL_MODES, saved=request.query_params.get("saved") == "1",
    )  # fmt: skip


@guarded("analyst")
def settings_save(request: Request, ctx: Ctx) -> Response:
    form = ctx.form or FormData()
    chosen = accounts.ReviewSettings.checked(
        {"blur": form.get("blur"), "greyscale": form.get("greyscale") == "on",
         "reveal": form.get("reveal")}
    )  # fmt: skip
    accounts.set_review_settings(ctx.workspace, ctx.principal.name, chosen)
    return RedirectResponse("/settings?saved=1", status_code=303)


@guarded("analyst")
def item_media(request: Request, ctx: Ctx) -> Response:
    greyscale = _view(ctx).greyscale
    data, media_type = review.render_media(
        ctx.workspace, _item_id(request), veiled=True, greyscale=greyscale
    )
    return Response(data, media_type=media_type)


@guarded("analyst", api=True)
def item_reveal(request: Request, ctx: Ctx) -> Response:
    takedown_id = _item_id(request)
    review.item_facts(ctx.workspace, takedown_id)  # 404 for unknown items
    if ctx.session is not None:
        ctx.session.reveals += 1
    reveals = ctx.session.reveals if ctx.session else 0
    review.audit_reveal(ctx.workspace, takedown_id, ctx.principal.name, reveals)
    ticket = ctx.state.tickets.issue(takedown_id, ctx.principal.account_id)
    return JSONResponse(
        {
            "src": f"/item/{takedown_id}/media/full?ticket={ticket}",
            "reveals": reveals,
            "break_due": reveals >= ctx.state.settings.break_after_reveals,
        }
    )


@guarded("analyst")
def item_media_full(request: Request, ctx: Ctx) -> Response:
    takedown_id = _item_id(request)
    ticket = request.query_params.get("ticket", "")
    if not ctx.state.tickets.redeem(ticket, takedown_id, ctx.principal.account_id):
        return Response(
            "reveal ticket missing, used or expired", status_code=400, media_type="text/plain"
        )
    data, media_type = review.render_media(ctx.workspace, takedown_id, veiled=False)
    return Response(data, media_type=media_type)


def _decided(request: Request, ctx: Ctx, takedown_id: int) -> Response:
    review.release(ctx.workspace, takedown_id, ctx.principal.name)
    if ctx.form and ctx.form.get("then") == "next":
        return RedirectResponse("/review/next", status_code=303)
    return RedirectResponse(f"/item/{takedown_id}", status_code=303)


@guarded("analyst")
def item_confirm(request: Request, ctx: Ctx) -> Response:
    takedown_id = _item_id(request)
    review.require_claim(ctx.workspace, takedown_id, ctx.principal.name)
    note = str(ctx.form.get("note") or "").strip()[:2000] if ctx.form else ""
    confirmations.confirm(ctx.workspace, takedown_id, note or None)
    return _decided(request, ctx, takedown_id)


@guarded("analyst")
def item_reject(request: Request, ctx: Ctx) -> Response:
    takedown_id = _item_id(request)
    review.require_claim(ctx.workspace, takedown_id, ctx.principal.name)
    reason = str(ctx.form.get("reason") or "").strip()[:2000] if ctx.form else ""
    if not reason:
        raise CaseworkError("give the reason this is not the reported material")
    queue.set_status(ctx.workspace, takedown_id, "rejected", reason)
    return _decided(request, ctx, takedown_id)


@guarded("analyst")
def item_skip(request: Request, ctx: Ctx) -> Response:
    takedown_id = _item_id(request)
    review.release(ctx.workspace, takedown_id, ctx.principal.name)
    review.audit_skip(ctx.workspace, takedown_id, ctx.principal.name)
    return RedirectResponse("/review/next", status_code=303)


def _case_page(request: Request, ctx: Ctx, reveal: bool) -> Response:
    case_id = request.path_params["case_id"]
    shown = cases.show_case(ctx.workspace, case_id, reveal=reveal)
    return render(
        "case.html.j2", ctx, case=shown, takedowns=review.case_takedowns(ctx.workspace, case_id)
    )


@guarded("supervisor")
def case_page(request: Request, ctx: Ctx) -> Response:
    return _case_page(request, ctx, reveal=False)


@guarded("supervisor")
def case_contact(request: Request, ctx: Ctx) -> Response:
    """The case page with the victim's contact decrypted, this once (audited)."""
    return _case_page(request, ctx, reveal=True)


@guarded("supervisor")
def audit_page(request: Request, ctx: Ctx) -> Response:
    with ctx.workspace.store.read_session() as session:
        entries = list(
            session.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(200)).scalars()
        )
        checked, problems = audit.verify(session, ctx.workspace.home.audit_head_file)
    return render("audit.html.j2", ctx, entries=entries, checked=checked, problems=problems)


def _report_query(request: Request) -> dict[str, str | None]:
    params = request.query_params
    return {name: params.get(name) or None for name in ("since", "until", "case")}


@guarded("supervisor")
def report_page(request: Request, ctx: Ctx) -> Response:
    """`ansim report`'s figures for a period, with its plot (drawn on request, in memory)."""
    from ansim.server import status_pages

    wanted = _report_query(request)
    shown = status_pages.report_figures(
        ctx.workspace, wanted["since"], wanted["until"], wanted["case"]
    )
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in wanted.items() if v)
    return render("report.html.j2", ctx, report=shown, wanted=wanted, plot_query=query)


@guarded("supervisor")
def report_plot(request: Request, ctx: Ctx) -> Response:
    from ansim.server import status_pages

    wanted = _report_query(request)
    png = status_pages.report_png(ctx.workspace, wanted["since"], wanted["until"], wanted["case"])
    return Response(png, media_type="image/png")


@guarded("admin")
def key_page(request: Request, ctx: Ctx) -> Response:
    from ansim.server import status_pages

    rotated = request.query_params.get("rotated")
    return render(
        "key.html.j2", ctx, key=status_pages.key_status(ctx.workspace),
        rotated=int(rotated) if rotated and rotated.isdigit() else None,
    )  # fmt: skip


@guarded("admin")
def key_rotate(request: Request, ctx: Ctx) -> Response:
    from ansim.server import status_pages

    result = status_pages.rotate_key(ctx.workspace)
    return RedirectResponse(f"/admin/key?rotated={result['reencrypted']}", status_code=303)


@guarded("admin")
def indexes_page(request: Request, ctx: Ctx) -> Response:
    from ansim.server import status_pages

    return render(
        "indexes.html.j2", ctx, banks=status_pages.index_status(ctx.workspace),
        ready=ctx.state.index_ready.is_set(),
    )  # fmt: skip


@guarded("admin")
def users_page(request: Request, ctx: Ctx) -> Response:
    return render(
        "users.html.j2", ctx, users=accounts.list_users(ctx.workspace),
        tokens=accounts.list_tokens(ctx.workspace), roles=ROLE_ORDER,
    )  # fmt: skip


@guarded("admin")
def users_add(request: Request, ctx: Ctx) -> Response:
    form = ctx.form or FormData()
    role = str(form.get("role") or "")
    password = str(form.get("password") or "") or None
    accounts.add_user(ctx.workspace, str(form.get("name") or "").strip(), role, password)
    return RedirectResponse("/admin/users", status_code=303)


@guarded("admin")
def tokens_create(request: Request, ctx: Ctx) -> Response:
    """A token for an account (a partner's, typically), shown on this page once."""
    form = ctx.form or FormData()
    created = accounts.create_token(
        ctx.workspace, str(form.get("user") or ""), str(form.get("name") or "").strip()
    )
    return render(
        "users.html.j2", ctx, users=accounts.list_users(ctx.workspace),
        tokens=accounts.list_tokens(ctx.workspace), roles=ROLE_ORDER, created=created,
    )  # fmt: skip


@guarded("admin")
def tokens_revoke(request: Request, ctx: Ctx) -> Response:
    try:
        token_id = int(request.path_params["token_id"])
    except ValueError as exc:
        raise NotFound("no such token") from exc
    accounts.revoke_token(ctx.workspace, token_id)
    return RedirectResponse("/admin/users", status_code=303)


@guarded("admin")
def users_disable(request: Request, ctx: Ctx) -> Response:
    name = request.path_params["name"]
    enable = bool(ctx.form and ctx.form.get("enable"))
    shown = accounts.set_disabled(ctx.workspace, name, disabled=not enable)
    if shown["disabled"]:
        with ctx.workspace.store.read_session() as session:
            from ansim.server.tables import Account

            account_id = session.execute(
                select(Account.id).where(Account.name == name)
            ).scalar_one()
        ctx.state.sessions.end_all_of(account_id)
    return RedirectResponse("/admin/users", status_code=303)


@guarded("supervisor")
def rules_page(request: Request, ctx: Ctx) -> Response:
    return render(
        "rules.html.j2", ctx, rules=confirmations.list_rules(ctx.workspace), case_types=CASE_TYPES
    )


@guarded("supervisor")
def rules_set(request: Request, ctx: Ctx) -> Response:
    form = ctx.form or FormData()
    try:
        required = int(str(form.get("confirmations") or ""))
    except ValueError as exc:
        raise CaseworkError("confirmations must be a number from 1 to 5") from exc
    confirmations.set_rule(ctx.workspace, str(form.get("case_type") or ""), required)
    return RedirectResponse("/admin/rules", status_code=303)


# --- HMA-compatible API ---------------------------------------------------------------------


def _require_index(state: ServerState) -> None:
    if not state.index_ready.is_set():
        raise ApiError(503, "index not yet ready")


def _param(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if value is None:
        raise ApiError(400, f"{name} is required")
    return value


async def status(request: Request) -> Response:
    """Liveness as HMA answers it: plain text, 503 until the indexes are loaded."""
    state: ServerState = request.app.state.server
    if not state.index_ready.is_set():
        return Response("NOT-READY", status_code=503, media_type="text/plain")
    return Response("I-AM-ALIVE", media_type="text/plain")


status.required_role = None  # type: ignore[attr-defined]


def one_upload(ctx: Ctx) -> tuple[str, UploadFile]:
    uploads = [
        (name, value)
        for name, value in (ctx.form or FormData()).multi_items()
        if isinstance(value, UploadFile)
    ]
    if not uploads:
        raise ApiError(400, "Missing multipart/form-data file upload")
    if len(uploads) > 1:
        raise ApiError(400, "Only one file allowed per request")
    return uploads[0]


def _hash_upload(ctx: Ctx) -> dict[str, str]:
    """Hash the one uploaded file, whose field name is its content type (photo, video)."""
    content_type, upload = one_upload(ctx)
    if content_type not in hma_service.CONTENT_TYPES:
        raise ApiError(400, f"no such content_type: '{content_type}'")
    with private_copy(upload) as path:
        return hma_service.hash_path(path, content_type)


def upload_name(upload: UploadFile) -> str:
    """The uploaded file's own name, as a plain file name (a reference's label is its file
    name): no folders, no control or path characters, at most 120 characters."""
    base = re.split(r"[/\\]", upload.filename or "")[-1]
    cleaned = "".join(c for c in base if c.isprintable() and c not in '<>:"|?*').strip(" .")
    return cleaned[:120] or "upload"


class private_copy:
    """The upload in a 0600 file in a 0700 folder (memory-backed /dev/shm where there is
    one), deleted when the block ends: the hashers read files."""

    def __init__(self, upload: UploadFile, name: str = "upload") -> None:
        self.upload = upload
        self.name = name

    def __enter__(self) -> Path:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        self.folder = tempfile.TemporaryDirectory(prefix="ansim-upload-", dir=base)
        path = Path(self.folder.name) / self.name
        self.upload.file.seek(0)
        data = self.upload.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            self.folder.cleanup()
            raise ApiError(413, f"uploads are limited to {MAX_UPLOAD_BYTES >> 20} MiB")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        return path

    def __exit__(self, *exc_info: object) -> None:
        self.folder.cleanup()


def _hash_url(ctx: Ctx, url: str, content_type: str | None) -> dict[str, str]:
    """Fetch `url` through the crawler's guarded fetcher (no private addresses) and hash it."""
    import asyncio

    from ansim.pipeline.recheck_service import RecheckFetch

    async def fetch_and_hash() -> dict[str, str]:
        fetch = RecheckFetch(timeout_s=30, allow_loopback=ctx.state.settings.allow_loopback_fetch)
        async with fetch.fetcher() as fetcher:
            result = await fetcher.fetch(url)
            if not result.ok or result.body_path is None:
                raise ApiError(400, f"cannot fetch url: {result.outcome} {result.error}".strip())
            kind = content_type
            if not kind:
                mime = (result.content_type or "").lower()
                kind = (
                    "photo"
                    if mime.startswith("image")
                    else "video"
                    if mime.startswith("video")
                    else None
                )
            if kind is None:
                raise ApiError(
                    400,
                    f"unsupported url ContentType: '{result.content_type}', "
                    "if you know the expected type, provide it with the content_type query param",
                )
            return hma_service.hash_path(result.body_path, kind)

    return asyncio.run(fetch_and_hash())


@guarded("partner", api=True)
def hash_get(request: Request, ctx: Ctx) -> Response:
    url = _param(request, "url")
    return JSONResponse(_hash_url(ctx, url, request.query_params.get("content_type")))


@guarded("partner", api=True)
def hash_post(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(_hash_upload(ctx))


def _lookup_all(
    request: Request, ctx: Ctx, hashes: dict[str, str], endpoint: str
) -> dict[str, Any]:
    _require_index(ctx.state)
    coinflip = (
        0.0
        if request.query_params.get("bypass_coinflip") == "true"
        else random.Random(request.query_params.get("seed")).random()
    )
    results: dict[str, Any] = {}
    for signal_type, value in hashes.items():
        found = hma_service.lookup(ctx.workspace, signal_type, value, coinflip)
        ctx.state.lookups.record(
            ctx.workspace, ctx.principal.name, endpoint, signal_type, sum(map(len, found.values()))
        )
        results[signal_type] = found
    return results


@guarded("partner", api=True)
def lookup_get(request: Request, ctx: Ctx) -> Response:
    if request.query_params.get("url"):
        hashes = _hash_url(
            ctx, request.query_params["url"], request.query_params.get("content_type")
        )
        results = _lookup_all(request, ctx, hashes, "lookup")
        selected = request.query_params.get("signal_type")
        return JSONResponse(results.get(selected, {}) if selected else results)
    signal_type = _param(request, "signal_type")
    signal = _param(request, "signal")
    return JSONResponse(_lookup_all(request, ctx, {signal_type: signal}, "lookup")[signal_type])


@guarded("partner", api=True)
def lookup_post(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(_lookup_all(request, ctx, _hash_upload(ctx), "lookup"))


@guarded("partner", api=True)
def raw_lookup(request: Request, ctx: Ctx) -> Response:
    _require_index(ctx.state)
    signal_type = _param(request, "signal_type")
    matches = hma_service.raw_matches(ctx.workspace, signal_type, _param(request, "signal"))
    ctx.state.lookups.record(
        ctx.workspace, ctx.principal.name, "raw_lookup", signal_type, len(matches)
    )
    if request.query_params.get("include_distance", "false").lower() in ("true", "1", "yes"):
        shown: list[Any] = [{"bank_content_id": c, "distance": str(d)} for c, _, d in matches]
    else:
        shown = [c for c, _, _ in matches]
    return JSONResponse({"matches": shown})


@guarded("partner", api=True)
def compare(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(hma_service.compare(ctx.json))


@guarded("partner", api=True)
def index_status(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(
        hma_service.index_status(
            ctx.workspace, ctx.state.index_ready.is_set(), request.query_params.get("signal_type")
        )
    )


@guarded("analyst", api=True)
def banks_list(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(hma_service.list_banks(ctx.workspace))


@guarded("admin", api=True)
def bank_create(request: Request, ctx: Ctx) -> Response:
    data = ctx.json if isinstance(ctx.json, dict) else {}
    if "name" not in data:
        raise ApiError(400, "name is required")
    ratio = data.get(
        "enabled_ratio", 1.0 if data.get("enabled", True) not in (False, "false", "0") else 0.0
    )
    try:
        ratio = float(ratio)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "enabled_ratio must be a number") from exc
    bank = hma_service.create_bank(
        ctx.workspace, str(data["name"]), ratio, str(data.get("case_type", "other"))
    )
    return JSONResponse(bank, status_code=201)


@guarded("analyst", api=True)
def bank_show(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(hma_service.get_bank(ctx.workspace, request.path_params["bank"]))


def _content_id(request: Request) -> int:
    try:
        return int(request.path_params["content_id"])
    except ValueError as exc:
        raise ApiError(404, f"content '{request.path_params['content_id']}' not found") from exc


@guarded("supervisor", api=True)
def bank_content_get(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(
        hma_service.get_content(
            ctx.workspace,
            request.path_params["bank"],
            _content_id(request),
            request.query_params.get("signal_type"),
        )
    )


@guarded("supervisor", api=True)
def bank_content_add(request: Request, ctx: Ctx) -> Response:
    bank = request.path_params["bank"]
    hma_service.get_bank(ctx.workspace, bank)  # 404 before any hashing
    if request.query_params.get("url"):
        raise ApiError(400, "banking by url is not offered here: upload the file")
    content_type, upload = one_upload(ctx)
    if content_type not in hma_service.CONTENT_TYPES:
        raise ApiError(400, f"no such content_type: '{content_type}'")
    with private_copy(upload) as path:
        return JSONResponse(hma_service.add_content_file(ctx.workspace, bank, path))


@guarded("supervisor", api=True)
def bank_content_delete(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(
        hma_service.delete_content(ctx.workspace, request.path_params["bank"], _content_id(request))
    )


@guarded("supervisor", api=True)
def bank_signal_add(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(
        hma_service.add_content_signals(ctx.workspace, request.path_params["bank"], ctx.json)
    )


@guarded("partner", api=True)
def openapi(request: Request, ctx: Ctx) -> Response:
    from ansim.server.openapi import document

    return JSONResponse(document(request.app.routes))


# --- The application ------------------------------------------------------------------------


class SecurityHeaders:
    """Adds the console's security headers to every response, errors included."""

    def __init__(self, app: ASGIApp, tls: bool) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"cache-control" or static
                ]
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"cross-origin-resource-policy", b"same-origin"),
                ]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                if self.tls:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def routes() -> list[Route | Mount]:
    static = Path(__file__).parent / "static"
    return [
        Route("/", home),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/queue", queue_page),
        Route("/review/next", next_item),
        Route("/item/{item_id}", item_page),
        Route("/item/{item_id}/media", item_media),
        Route("/item/{item_id}/media/full", item_media_full),
        Route("/item/{item_id}/reveal", item_reveal, methods=["POST"]),
        Route("/item/{item_id}/confirm", item_confirm, methods=["POST"]),
        Route("/item/{item_id}/reject", item_reject, methods=["POST"]),
        Route("/item/{item_id}/skip", item_skip, methods=["POST"]),
        Route("/settings", settings_page, methods=["GET"]),
        Route("/settings", settings_save, methods=["POST"]),
        Route("/case/{case_id}", case_page),
        Route("/case/{case_id}/contact", case_contact, methods=["POST"]),
        Route("/audit", audit_page),
        Route("/report", report_page),
        Route("/report/plot.png", report_plot),
        Route("/admin/key", key_page, methods=["GET"]),
        Route("/admin/key/rotate", key_rotate, methods=["POST"]),
        Route("/admin/indexes", indexes_page),
        Route("/admin/users", users_page, methods=["GET"]),
        Route("/admin/users", users_add, methods=["POST"]),
        Route("/admin/users/{name}/disable", users_disable, methods=["POST"]),
        Route("/admin/tokens", tokens_create, methods=["POST"]),
        Route("/admin/tokens/{token_id}/revoke", tokens_revoke, methods=["POST"]),
        Route("/admin/rules", rules_page, methods=["GET"]),
        Route("/admin/rules", rules_set, methods=["POST"]),
        Route("/status", status),
        Route("/h/hash", hash_get, methods=["GET"]),
        Route("/h/hash", hash_post, methods=["POST"]),
        Route("/m/lookup", lookup_get, methods=["GET"]),
        Route("/m/lookup", lookup_post, methods=["POST"]),
        Route("/m/raw_lookup", raw_lookup),
        Route("/m/compare", compare, methods=["POST"]),
        Route("/m/index/status", index_status),
        Route("/c/banks", banks_list, methods=["GET"]),
        Route("/c/banks", bank_create, methods=["POST"]),
        Route("/c/bank/{bank}", bank_show),
        Route("/c/bank/{bank}/content", bank_content_add, methods=["POST"]),
        Route("/c/bank/{bank}/content/{content_id}", bank_content_get, methods=["GET"]),
        Route("/c/bank/{bank}/content/{content_id}", bank_content_delete, methods=["DELETE"]),
        Route("/c/bank/{bank}/signal", bank_signal_add, methods=["POST"]),
        Route("/openapi.json", openapi),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ]


def _load_indexes(state: ServerState) -> None:
    """Load (rebuilding if stale) the PDQ index before lookups are answered."""
    try:
        with state.workspace.store.read_session() as session:
            state.workspace.banks.index(session, "pdq")
        state.index_ready.set()
    except Exception as exc:  # noqa: BLE001 - reported by /status and the log
        state.index_error = str(exc)
        raise


def create_app(
    workspace: Workspace, settings: ServerSettings | None = None, tls: bool = False
) -> Starlette:
    settings = settings or ServerSettings()
    if tls:
        settings = dataclasses.replace(settings, secure_cookies=True)
    state = ServerState(
        workspace=workspace,
        settings=settings,
        sessions=Sessions(idle_timeout_s=settings.idle_timeout_s),
        throttle=LoginThrottle(attempts=settings.login_attempts_per_source),
        limiter=RateLimiter(settings.partner_rate, settings.partner_burst),
    )
    from ansim.server import api

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        state.lookups.flush(state.workspace)  # the lookup misses counted since the last flush

    app = Starlette(routes=[*api.routes(), *routes()], lifespan=lifespan)
    app.state.server = state
    threading.Thread(
        target=_load_indexes, args=(state,), daemon=True, name="ansim-index-load"
    ).start()
    app.add_middleware(SecurityHeaders, tls=tls or settings.secure_cookies)
    return app
