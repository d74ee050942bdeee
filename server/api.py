"""The JSON API the command line uses as a client (`ANSIM_SERVER`, `ansim login`): the
queue and confirmation rules, cases (their services, closing and purging), references
(adding, withdrawing consent), scans, evidence export, notices (drafting, sending,
settling), the report and the audit chain, acting as the token's account. Cases,
references, evidence, the report and the audit log need a supervisor (the console's case,
report and audit pages do too); the queue, scans and notices an analyst."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ansim.casework import cases, confirmations, queue
from ansim.casework.errors import CaseworkError
from ansim.server import accounts, review
from ansim.server.accounts import LoginRefused
from ansim.server.app import Ctx, api_error, guarded
from ansim.server.hma_service import ApiError
from ansim.store import audit
from ansim.store.private_files import private_dir, write_private
from ansim.store.tables import AuditEntry
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def _body(ctx: Ctx) -> dict[str, Any]:
    return ctx.json if isinstance(ctx.json, dict) else {}


def _item_id(request: Request) -> int:
    try:
        return int(request.path_params["item_id"])
    except ValueError as exc:
        raise ApiError(404, "no such queue item") from exc


async def login(request: Request) -> Response:
    """Exchange a name and password for a new personal token (`ansim login`)."""
    state = request.app.state.server
    source = request.client.host if request.client else "unknown"
    if not state.throttle.allowed(source):
        return api_error(429, "too many failed sign-ins from here; wait a few minutes")
    try:
        body = await request.json()
    except ValueError:
        return api_error(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        return api_error(400, "expected a JSON object")
    name = str(body.get("name") or "").strip().lower()[:64]
    password = str(body.get("password") or "")
    token_name = str(body.get("token_name") or "cli")[:64]
    try:
        principal = await run_in_threadpool(
            accounts.verify_login, state.workspace, name, password, source
        )
    except LoginRefused as exc:
        state.throttle.failed(source)
        return api_error(401, str(exc))
    state.throttle.succeeded(source)
    workspace = state.as_actor(principal)
    created = await run_in_threadpool(accounts.create_token, workspace, name, token_name)
    return JSONResponse({"user": principal.name, "role": principal.role, "token": created["token"]})


@guarded("analyst", api=True)
def logout(request: Request, ctx: Ctx) -> Response:
    """Revoke the token this request came with."""
    header = request.headers.get("authorization", "")
    token = header.partition(" ")[2].strip()
    if not token:
        raise ApiError(400, "sign out revokes a token: send it as Authorization: Bearer")
    return JSONResponse(accounts.revoke_token_value(ctx.workspace, token))


@guarded("analyst", api=True)
def queue_list(request: Request, ctx: Ctx) -> Response:
    params = request.query_params
    return JSONResponse(queue.list_queue(ctx.workspace, params.get("status"), params.get("case")))


@guarded("analyst", api=True)
def queue_show(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(queue.show_item(ctx.workspace, _item_id(request)))


def _while_held(ctx: Ctx, takedown_id: int) -> None:
    """A CLI decision takes the item's claim for its duration, so it never lands on an item
    someone is reviewing in the console."""
    held = review.claim(ctx.workspace, takedown_id, ctx.principal.name)
    if not held["held"]:
        raise ApiError(409, f"item {takedown_id} is being reviewed by {held['holder']}")


@guarded("analyst", api=True)
def queue_confirm(request: Request, ctx: Ctx) -> Response:
    takedown_id = _item_id(request)
    _while_held(ctx, takedown_id)
    try:
        note = _body(ctx).get("note")
        shown = confirmations.confirm(ctx.workspace, takedown_id, str(note) if note else None)
    finally:
        review.release(ctx.workspace, takedown_id, ctx.principal.name)
    return JSONResponse(shown)


@guarded("analyst", api=True)
def queue_reject(request: Request, ctx: Ctx) -> Response:
    takedown_id = _item_id(request)
    reason = str(_body(ctx).get("reason") or "").strip()
    if not reason:
        raise CaseworkError("give the reason this is not the reported material")
    _while_held(ctx, takedown_id)
    try:
        shown = queue.set_status(ctx.workspace, takedown_id, "rejected", reason)
    finally:
        review.release(ctx.workspace, takedown_id, ctx.principal.name)
    return JSONResponse(shown)


@guarded("analyst", api=True)
def rules_get(request: Request, ctx: Ctx) -> Response:
    return JSONResponse(confirmations.list_rules(ctx.workspace))


@guarded("supervisor", api=True)
def rules_set(request: Request, ctx: Ctx) -> Response:
    body = _body(ctx)
    try:
        required = int(body.get("confirmations", ""))
    except (TypeError, ValueError) as exc:
        raise CaseworkError("confirmations must be a number from 1 to 5") from exc
    return JSONResponse(confirmations.set_rule(ctx.workspace, str(body.get("case_type")), required))


def _as_json(data: Any) -> Response:
    """JSON with dates as ISO text (the shapes `--json` prints embedded)."""
    return Response(
        json.dumps(data, ensure_ascii=False, default=str), media_type="application/json"
    )


@guarded("supervisor", api=True)
def cases_list(request: Request, ctx: Ctx) -> Response:
    listed = cases.list_cases(ctx.workspace, request.query_params.get("status"))
    return _as_json([summary.as_dict() for summary in listed])


@guarded("supervisor", api=True)
def case_open(request: Request, ctx: Ctx) -> Response:
    """Open a case; the contact travels in the body (never the URL) and is stored encrypted."""
    body = _body(ctx)

    def text(name: str) -> str | None:
        value = body.get(name)
        return str(value) if value else None

    case_id = cases.open_case(
        ctx.workspace, str(body.get("type") or ""), text("pseudonym"), text("contact"),
        text("assigned_to"),
    )  # fmt: skip
    return JSONResponse({"case_id": case_id}, status_code=201)


@guarded("supervisor", api=True)
def case_show(request: Request, ctx: Ctx) -> Response:
    """One case; `reveal=1` decrypts the contact (audited as this account)."""
    from ansim.casework.references import list_references
    from ansim.signal_types import indexed_types

    case_id = request.path_params["case_id"]
    reveal = request.query_params.get("reveal") in ("1", "true", "yes")
    shown = cases.show_case(ctx.workspace, case_id, reveal)
    kinds = {signal_type.name for signal_type in indexed_types()}
    shown["reference_list"] = list_references(ctx.workspace, case_id, None, kinds)
    return _as_json(shown)


@guarded("supervisor", api=True)
def case_service(request: Request, ctx: Ctx) -> Response:
    """Record a service given to a case; the note travels in the body and is stored
    encrypted. A supervisor, like every other case record."""
    body = _body(ctx)
    case_id = request.path_params["case_id"]
    note = str(body.get("note") or "")
    service_id = cases.add_service(ctx.workspace, case_id, str(body.get("kind") or ""), note)
    return JSONResponse({"case_id": case_id, "service_id": service_id}, status_code=201)


@guarded("supervisor", api=True)
def case_close(request: Request, ctx: Ctx) -> Response:
    """Close a case; `purge: true` in the body also deletes what identifies it."""
    from ansim.casework import retention

    purge = _body(ctx).get("purge") is True
    return _as_json(retention.close_case(ctx.workspace, request.path_params["case_id"], purge))


@guarded("supervisor", api=True)
def report(request: Request, ctx: Ctx) -> Response:
    from ansim.server import status_pages

    params = request.query_params
    return _as_json(
        status_pages.report_figures(
            ctx.workspace, params.get("since"), params.get("until"), params.get("case")
        )
    )


@guarded("supervisor", api=True)
def report_plot(request: Request, ctx: Ctx) -> Response:
    """The report's plot as PNG, drawn in memory (`ansim report --plot` through the server)."""
    from ansim.server import status_pages

    params = request.query_params
    png = status_pages.report_png(
        ctx.workspace, params.get("since"), params.get("until"), params.get("case")
    )
    return Response(png, media_type="image/png")


@guarded("supervisor", api=True)
def audit_verify(request: Request, ctx: Ctx) -> Response:
    """The whole chain checked against the server's own anchor of its head (GET), and
    against a head shipped off earlier whose text travels in the body (POST `anchor`)."""
    shipped = None
    if request.method == "POST":
        text = _body(ctx).get("anchor")
        if not isinstance(text, str) or len(text) > 1024:
            raise ApiError(400, "anchor: the text of an `audit anchor` file")
        shipped = (
            private_dir(ctx.workspace.home.work_dir) / f"anchor-{os.getpid()}-{id(request)}.txt"
        )
        write_private(shipped, text.encode())
    try:
        with ctx.workspace.store.read_session() as session:
            try:
                checked, problems = audit.verify(
                    session, ctx.workspace.home.audit_head_file, shipped
                )
            except audit.AnchorProblem as exc:
                checked, problems = 0, [audit.AuditProblem(None, str(exc))]
    finally:
        if shipped is not None:
            shipped.unlink(missing_ok=True)
    return JSONResponse(
        {"entries": checked, "ok": not problems, "problems": [p.__dict__ for p in problems]}
    )


@guarded("supervisor", api=True)
def audit_anchor(request: Request, ctx: Ctx) -> Response:
    """The chain's head as the text `audit anchor` ships off the machine."""
    from ansim.store.tables import AuditHead

    with ctx.workspace.store.read_session() as session:
        head = session.get(AuditHead, 1)
        seq, head_hash = (head.seq, head.entry_hash) if head is not None else (0, "")
    if not seq:
        raise ApiError(409, "the audit log is empty; nothing to anchor")
    text = audit.shipped_anchor_text(seq, head_hash)
    return JSONResponse({"seq": seq, "hash": head_hash, "text": text})


@guarded("analyst", api=True)
def queue_recheck(request: Request, ctx: Ctx) -> Response:
    """The nightly re-check, run by the server with its own fetcher settings (loopback,
    user agent) and SMTP settings; status changes are recorded as this account."""
    from datetime import timedelta

    from ansim.casework import notice_service
    from ansim.casework.recheck import RecheckPolicy
    from ansim.casework.smtp import SmtpSettings
    from ansim.pipeline import recheck_service

    body = _body(ctx)
    try:
        policy = RecheckPolicy(
            resend_after=timedelta(hours=float(body.get("resend_after_hours", 24))),
            escalate_after=timedelta(days=float(body.get("escalate_after_days", 7))),
            gone_days_required=int(body.get("gone_days", 2)),
        )
        timeout_s = float(body.get("timeout_s", 15))
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"bad re-check option: {exc}") from exc
    if not 1 <= policy.gone_days_required <= 30 or not 0 < timeout_s <= 120:
        raise ApiError(400, "gone_days must be 1 to 30 and timeout_s 0 to 120")
    settings = ctx.workspace.settings
    smtp = sender = None
    if body.get("resend", True) and settings.smtp_url:
        try:
            smtp = SmtpSettings.configured(settings.smtp_url)
        except ValueError as exc:
            raise ApiError(409, f"the server has no usable SMTP settings: {exc}") from exc
        sender = notice_service.notice_sender(settings, None, None)
    result = recheck_service.recheck(
        ctx.workspace,
        recheck_service.RecheckFetch(
            timeout_s=timeout_s,
            allow_loopback=settings.allow_loopback,
            user_agent=settings.recheck_user_agent or recheck_service.BROWSER_USER_AGENT,
        ),
        policy,
        smtp,
        sender,
    )
    return _as_json({"report": result.as_dict(), "resend_configured": smtp is not None})


@guarded("supervisor", api=True)
def audit_list(request: Request, ctx: Ctx) -> Response:
    """The newest audit entries (`limit`, at most 1000), newest first."""
    limit = request.query_params.get("limit", "50")
    if not limit.isdigit() or not 0 < int(limit) <= 1000:
        raise ApiError(400, "limit must be a number from 1 to 1000")
    with ctx.workspace.store.read_session() as session:
        entries = session.execute(
            select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(int(limit))
        ).scalars()
        shown = [
            {"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action,
             "subject": e.subject, "detail": e.detail}
            for e in entries
        ]  # fmt: skip
    return _as_json(shown)


@guarded("analyst", api=True)
def notices_list(request: Request, ctx: Ctx) -> Response:
    from ansim.casework import notice_service

    params = request.query_params
    return _as_json(
        notice_service.list_notices(ctx.workspace, params.get("status"), params.get("host"))
    )


@guarded("analyst", api=True)
def notices_draft(request: Request, ctx: Ctx) -> Response:
    """Draft notices for confirmed items: their files stay in the server's home, where
    `notice send` sends them from; the sender defaults to the server's settings."""
    from ansim.casework import notice_service

    body = _body(ctx)

    def text(name: str) -> str | None:
        value = body.get(name)
        return str(value) if value else None

    sender = notice_service.notice_sender(ctx.workspace.settings, text("sender"), text("org"))
    return _as_json(notice_service.draft(ctx.workspace, sender, None, text("host")).as_dict())


@guarded("analyst", api=True)
def notice_show(request: Request, ctx: Ctx) -> Response:
    from ansim.casework import notice_service

    ref = request.path_params["ref"]
    found = [n for n in notice_service.list_notices(ctx.workspace) if n["ref"] == ref]
    if not found:
        raise ApiError(404, f"unknown notice {ref}")
    return _as_json(found[0])


@guarded("analyst", api=True)
def notices_send(request: Request, ctx: Ctx) -> Response:
    """Send drafted notices by the server's configured SMTP server (its settings, its
    password file: nothing of it travels); items move to notice_sent as this account."""
    from ansim.casework import notice_service
    from ansim.casework.smtp import SmtpSettings

    host = _body(ctx).get("host")
    try:
        smtp = SmtpSettings.configured(ctx.workspace.settings.smtp_url)
    except ValueError as exc:
        raise ApiError(409, f"the server has no usable SMTP settings: {exc}") from exc
    sent = notice_service.send(ctx.workspace, smtp, str(host) if host else None)
    return _as_json(sent.as_dict())


@guarded("analyst", api=True)
def notice_settle(request: Request, ctx: Ctx) -> Response:
    """Settle a notice an interrupted send left `sending`: `delivered` (true or false) is
    what the analyst found in the mail log."""
    from ansim.casework import notice_service

    delivered = _body(ctx).get("delivered")
    if not isinstance(delivered, bool):
        raise ApiError(400, "delivered: true or false (what the mail log says)")
    return _as_json(notice_service.settle(ctx.workspace, request.path_params["ref"], delivered))


@guarded("supervisor", api=True)
def references_list(request: Request, ctx: Ctx) -> Response:
    from ansim.casework.references import list_references
    from ansim.signal_types import indexed_types

    params = request.query_params
    kinds = {signal_type.name for signal_type in indexed_types()}
    return _as_json(
        list_references(ctx.workspace, params.get("case"), params.get("modality"), kinds)
    )


@guarded("supervisor", api=True)
def references_import(request: Request, ctx: Ctx) -> Response:
    """Import one uploaded hash list into the case's references (`format`: pdq or md5, one
    transaction; vpdq: one video's hash file). The upload is hashed from a 0600 copy in
    /dev/shm and deleted, as `ref add`'s are."""
    from ansim.pipeline import intake
    from ansim.server.app import one_upload, private_copy, upload_name

    case_id = request.path_params["case_id"]
    hash_format = request.query_params.get("format", "pdq")
    _, upload = one_upload(ctx)
    name = upload_name(upload)
    with private_copy(upload, name) as path:
        if hash_format != "vpdq":
            return _as_json(
                intake.import_hash_list(ctx.workspace, case_id, path, hash_format).as_dict()
            )
        imported = intake.import_vpdq_files(ctx.workspace, case_id, [path])
    return _as_json([{**r.as_dict(), "path": name} for r in imported])


@guarded("supervisor", api=True)
def references_export(request: Request, ctx: Ctx) -> Response:
    """Consented references' hashes as `hash,ref-ID` lines (`format` pdq or md5), streamed
    from the store as they are read; vpdq: one JSON list of [label, text] per video."""
    from ansim.pipeline import intake
    from ansim.pipeline.hash_lists import HASH_FORMATS

    hash_format = request.query_params.get("format", "pdq")
    case_id = request.query_params.get("case") or None
    if case_id:
        with ctx.workspace.store.read_session() as session:
            cases.get_case(session, case_id)  # 404 before the stream starts
    if hash_format == "vpdq":
        return _as_json(intake.export_vpdq(ctx.workspace, case_id))
    if hash_format not in HASH_FORMATS:
        raise ApiError(400, f"format must be one of {', '.join(HASH_FORMATS)} or vpdq")
    return StreamingResponse(
        _streamed_export(ctx, hash_format, case_id), media_type="text/plain; charset=utf-8"
    )


def _streamed_export(ctx: Ctx, hash_format: str, case_id: str | None) -> Iterator[bytes]:
    """The export runs in its own thread, handing lines over a short queue: the store is
    read as the client takes them, never gathered whole. A client gone away stops it
    (the export then rolls back, and no `ref.export` is audited)."""
    import queue as queues
    import threading

    from ansim.pipeline import intake

    lines: queues.Queue[bytes | BaseException | None] = queues.Queue(maxsize=64)
    gone = threading.Event()

    def hand_over(item: bytes | BaseException | None) -> None:
        while not gone.is_set():
            try:
                lines.put(item, timeout=1)
                return
            except queues.Full:
                continue
        raise ConnectionAbortedError("the client went away")

    def export() -> None:
        try:
            try:
                intake.export_hash_list(
                    ctx.workspace, hash_format, lambda text: hand_over(text.encode()), case_id
                )
                hand_over(None)
            except ConnectionAbortedError:
                raise
            except Exception as exc:  # handed to the response's thread, which raises it
                hand_over(exc)
        except ConnectionAbortedError:
            pass  # nobody is left to tell

    worker = threading.Thread(target=export, name="ansim-ref-export", daemon=True)
    worker.start()
    try:
        while (item := lines.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        gone.set()
        worker.join(timeout=5)


@guarded("supervisor", api=True)
def reference_withdraw(request: Request, ctx: Ctx) -> Response:
    """Consent withdrawn: the reference's signals leave every index now. The reason
    travels in the body and is kept encrypted with the audit log."""
    from ansim.pipeline import intake

    try:
        reference_id = int(request.path_params["reference_id"])
    except ValueError as exc:
        raise ApiError(404, "no such reference") from exc
    reason = _body(ctx).get("reason")
    removed = intake.withdraw_reference(
        ctx.workspace, reference_id, str(reason) if reason else None
    )
    return JSONResponse({"reference_id": reference_id, "signals_removed": removed})


@guarded("supervisor", api=True)
def reference_add(request: Request, ctx: Ctx) -> Response:
    """Fingerprint one uploaded file into the case's references (`ansim ref add` sends one
    request per file). The upload lives in a 0600 file in memory-backed /dev/shm while it
    is hashed, then is deleted: only the signals are kept, as embedded."""
    from ansim.detector.hashing import HashOptions
    from ansim.detector.video import REFERENCE_SECONDS_PER_HASH, reference_options
    from ansim.pipeline import intake
    from ansim.server.app import one_upload, private_copy, upload_name

    case_id = request.path_params["case_id"]
    with ctx.workspace.store.read_session() as session:
        cases.get_case(session, case_id)  # 404 before any hashing
    _, upload = one_upload(ctx)
    name = upload_name(upload)
    options = HashOptions(video=reference_options(REFERENCE_SECONDS_PER_HASH))
    with private_copy(upload, name) as path:
        [result] = intake.add_reference_files(ctx.workspace, case_id, [path], options)
    shown = result.as_dict()
    shown["path"] = name  # the caller's file, not the server's temporary copy
    return _as_json(shown)


@guarded("analyst", api=True)
def scan_upload(request: Request, ctx: Ctx) -> Response:
    """Scan one uploaded file found at `location` (the caller's path; `ansim scan` sends one
    request per file): matched against every reference, matches queued as this account.
    `dry_run=1` matches and records nothing."""
    from ansim.detector.decision import MatchRules
    from ansim.detector.hashing import HashOptions
    from ansim.pipeline import scanning
    from ansim.server.app import one_upload, private_copy, upload_name

    location = (request.query_params.get("location") or "").strip()
    if not location or "://" in location or len(location) > 2000:
        raise ApiError(400, "location: the file's path where it was collected (not a URL)")
    dry_run = request.query_params.get("dry_run") in ("1", "true", "yes")
    _, upload = one_upload(ctx)
    with private_copy(upload, upload_name(upload)) as path:
        matches, error = scanning.scan_file(
            ctx.workspace, path, location, dry_run, HashOptions(), MatchRules()
        )
    return _as_json(
        {"location": location, "error": error, "matches": [m.as_dict() for m in matches]}
    )


MAX_SCAN_URLS = 100


@guarded("analyst", api=True)
def scan_urls(request: Request, ctx: Ctx) -> Response:
    """Scan http(s) URLs (`urls` in the body, never the query): the server fetches them
    with the crawler's fetcher and guards, under its own loopback setting, and queues the
    matches with sealed evidence as this account."""
    from ansim.pipeline import crawl as crawling

    urls = _body(ctx).get("urls")
    if (
        not isinstance(urls, list)
        or not 0 < len(urls) <= MAX_SCAN_URLS
        or not all(
            isinstance(u, str) and u.startswith(("http://", "https://")) and len(u) <= 2000
            for u in urls
        )
    ):
        raise ApiError(400, f"urls: 1 to {MAX_SCAN_URLS} http(s) URLs")
    summary = crawling.scan_urls(ctx.workspace, urls, ctx.workspace.settings.allow_loopback)
    return _as_json(summary.as_dict())


@guarded("supervisor", api=True)
def evidence_export(request: Request, ctx: Ctx) -> Response:
    """One evidence bundle decrypted (digests checked) into a 0700 folder in memory-backed
    /dev/shm, read back and deleted: the files travel in the answer, for the client to
    write into the 0600 files its user asked for. `to` (the client's folder) is audited."""
    import base64
    import os
    import tempfile

    from ansim.pipeline import evidence_service

    try:
        evidence_id = int(request.path_params["evidence_id"])
    except ValueError as exc:
        raise ApiError(404, "no such evidence") from exc
    recorded_to = str(_body(ctx).get("to") or "")[:1000] or "(the client)"
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="ansim-export-", dir=base) as folder:
        result = evidence_service.export_evidence(
            ctx.workspace, evidence_id, Path(folder) / "out", recorded_to
        )
        files = [
            {"name": Path(p).name, "data": base64.b64encode(Path(p).read_bytes()).decode()}
            for p in result["files"]
        ]
    return JSONResponse({**result, "files": files})


def routes() -> list[Route]:
    return [
        Route("/api/login", login, methods=["POST"]),
        Route("/api/logout", logout, methods=["POST"]),
        Route("/api/queue", queue_list),
        Route("/api/queue/recheck", queue_recheck, methods=["POST"]),
        Route("/api/queue/{item_id}", queue_show),
        Route("/api/queue/{item_id}/confirm", queue_confirm, methods=["POST"]),
        Route("/api/queue/{item_id}/reject", queue_reject, methods=["POST"]),
        Route("/api/rules", rules_get, methods=["GET"]),
        Route("/api/rules", rules_set, methods=["POST"]),
        Route("/api/cases", cases_list, methods=["GET"]),
        Route("/api/cases", case_open, methods=["POST"]),
        Route("/api/cases/{case_id}", case_show),
        Route("/api/cases/{case_id}/services", case_service, methods=["POST"]),
        Route("/api/cases/{case_id}/close", case_close, methods=["POST"]),
        Route("/api/report", report),
        Route("/api/report/plot.png", report_plot),
        Route("/api/audit", audit_list),
        Route("/api/audit/verify", audit_verify, methods=["GET", "POST"]),
        Route("/api/audit/anchor", audit_anchor),
        Route("/api/references", references_list, methods=["GET"]),
        Route("/api/references/export", references_export, methods=["GET"]),
        Route("/api/cases/{case_id}/references/import", references_import, methods=["POST"]),
        Route("/api/cases/{case_id}/references", reference_add, methods=["POST"]),
        Route("/api/references/{reference_id}/withdraw", reference_withdraw, methods=["POST"]),
        Route("/api/scan", scan_upload, methods=["POST"]),
        Route("/api/scan/urls", scan_urls, methods=["POST"]),
        Route("/api/evidence/{evidence_id}/export", evidence_export, methods=["POST"]),
        Route("/api/notices", notices_list, methods=["GET"]),
        Route("/api/notices/draft", notices_draft, methods=["POST"]),
        Route("/api/notices/send", notices_send, methods=["POST"]),
        Route("/api/notices/{ref}", notice_show, methods=["GET"]),
        Route("/api/notices/{ref}/settle", notice_settle, methods=["POST"]),
    ]
