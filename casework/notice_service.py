"""Drafting and sending removal notices from the queue.

Draft: confirmed items, grouped per host (the registered host entry for each URL's
hostname), each group rendered as one notice and stored with the exact message; .eml files
and a regulator CSV are written beside. Items whose host is unknown or has no abuse e-mail
are listed as skipped with the command that fixes it.

Send: each drafted notice is claimed (so two senders never both send it), delivered by
SMTP, and only after the server accepted it are its items moved to `notice_sent`. A failed
delivery leaves the items as they were and the notice `failed`, to be retried.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ansim.casework.errors import CaseworkError, NotFound
from ansim.casework.hosts import contact, find_host, normalize_domain
from ansim.casework.notices import (
    NoticeError,
    NoticeItem,
    RenderedNotice,
    Sender,
    render_notice,
    write_csv,
    write_eml,
)
from ansim.casework.queue import get_item, transition
from ansim.casework.smtp import DeliveryError, SmtpSettings, deliver
from ansim.casework.workspace import Workspace
from ansim.settings import Settings
from ansim.store import audit
from ansim.store.tables import (
    Case,
    Host,
    Match,
    Notice,
    NoticeFile,
    NoticeTakedown,
    ScannedItem,
    Takedown,
    utcnow,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

SENDABLE = ("confirmed", "still_online")  # a first notice, or a resend
UNSENT = ("drafted", "failed")


def notice_sender(
    settings: Settings, email: str | None = None, organization: str | None = None
) -> Sender:
    """Who notices come from: `email` and `organization` as given, else the settings'."""
    email = email or settings.notice_from
    if not email:
        raise CaseworkError(
            "no sender address for notices: pass --sender EMAIL or set ANSIM_NOTICE_FROM"
        )
    return Sender(
        organization=organization or settings.notice_org or "Victim Support Center",
        email=email,
        phone=settings.notice_phone,
    )


@dataclass
class DraftResult:
    notices: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    csv: str | None = None

    @property
    def notice_ids(self) -> list[int]:
        return [n["id"] for n in self.notices]

    def as_dict(self) -> dict[str, Any]:
        return {
            "notices": self.notices,
            "skipped": self.skipped,
            "files": self.files,
            "csv": self.csv,
        }


def draft(
    workspace: Workspace,
    sender: Sender,
    out_dir: Path | None = None,
    host: str | None = None,
    statuses: tuple[str, ...] = ("confirmed",),
    takedown_ids: list[int] | None = None,
    now: datetime | None = None,
) -> DraftResult:
    """One notice per host for every item in `statuses` (default: confirmed)."""
    now = now or utcnow()
    only_domain = normalize_domain(host) if host else None
    result = DraftResult()
    rendered: list[RenderedNotice] = []
    with workspace.session() as session:
        query = (
            select(Takedown)
            .join(Case, Case.id == Takedown.case_id)
            .where(
                Takedown.status.in_(statuses),
                Case.status == "open",
                Takedown.location.contains("://"),  # a scanned local file has no host
            )
            .order_by(Takedown.id)
        )
        if takedown_ids is not None:
            query = query.where(Takedown.id.in_(takedown_ids))
        groups: dict[str, list[Takedown]] = defaultdict(list)
        hosts: dict[str, Host] = {}
        for takedown in session.execute(query).scalars():
            entry = find_host(session, takedown.host)
            if only_domain and (entry is None or entry.domain != only_domain):
                continue
            if entry is None or not entry.abuse_email:
                result.skipped.append(_skip(takedown, entry))
                continue
            hosts[entry.domain] = entry
            groups[entry.domain].append(takedown)
        for domain, takedowns in groups.items():
            notice_id, notice = _draft_one(
                session, workspace.actor, sender, hosts[domain], takedowns, now
            )
            rendered.append(notice)
            result.notices.append({"id": notice_id, **_notice_summary(notice)})
    if rendered:
        directory = out_dir or workspace.home.notices_dir / f"{now:%Y%m%d-%H%M%S}"
        result.files = [str(write_eml(notice, directory)) for notice in rendered]
        csv_path = directory / "regulator.csv"
        write_csv(rendered, csv_path)
        result.csv = str(csv_path)
        # Remembered so that purging a case deletes the files that list its URLs.
        with workspace.session() as session:
            for summary, path in zip(result.notices, result.files, strict=True):
                session.add(NoticeFile(notice_id=summary["id"], path=str(Path(path).resolve())))
                session.add(NoticeFile(notice_id=summary["id"], path=str(csv_path.resolve())))
    return result


def _skip(takedown: Takedown, entry: Host | None) -> dict[str, Any]:
    hostname = takedown.host or "(none)"
    if entry is None:
        reason = f"unknown host: run `ansim host set {hostname} --abuse-email ADDRESS`"
    else:
        reason = (
            f"host {entry.domain} has no abuse e-mail"
            + (f" (web form: {entry.form_url})" if entry.form_url else "")
            + f": run `ansim host set {entry.domain} --abuse-email ADDRESS`"
        )
    return {"id": takedown.id, "host": hostname, "reason": reason}


def _draft_one(
    session: Session,
    actor: str,
    sender: Sender,
    host: Host,
    takedowns: list[Takedown],
    now: datetime,
) -> tuple[int, RenderedNotice]:
    ids = [t.id for t in takedowns]
    _discard_unsent_drafts(session, actor, ids)
    notice = Notice(
        host_domain=host.domain,
        lang=host.lang,
        to_address=host.abuse_email,
        created_by=actor,
        created_at=now,
    )
    session.add(notice)
    session.flush()
    notice.ref = f"N-{now:%Y}-{notice.id:05d}"
    try:
        rendered = render_notice(
            contact(host), [_notice_item(session, t) for t in takedowns], sender, notice.ref, now
        )
    except NoticeError as exc:
        raise CaseworkError(str(exc)) from exc
    notice.subject = rendered.subject
    notice.message = rendered.message.as_bytes()
    notice.takedowns = [NoticeTakedown(takedown_id=t_id) for t_id in ids]
    audit.record(
        session,
        actor,
        "notice.draft",
        f"notice:{notice.ref}",
        {"host": host.domain, "lang": host.lang, "takedowns": ids},
    )
    return notice.id, rendered


def _discard_unsent_drafts(session: Session, actor: str, takedown_ids: list[int]) -> None:
    """A new draft supersedes unsent drafts listing the same items (no double notices)."""
    stale = session.execute(
        select(Notice)
        .join(NoticeTakedown, NoticeTakedown.notice_id == Notice.id)
        .where(NoticeTakedown.takedown_id.in_(takedown_ids), Notice.status.in_(UNSENT))
        .with_for_update()
    ).scalars()
    for notice in set(stale):
        notice.status = "discarded"
        audit.record(session, actor, "notice.discard", f"notice:{notice.ref}", {"why": "redrafted"})


def public_item_ref(key: bytes, takedown_id: int) -> str:
    """The opaque reference hosts see for one queue item (a keyed hash of its id)."""
    digest = hmac.new(key, f"notice-item:{takedown_id}".encode(), hashlib.sha256).hexdigest()
    return f"R-{digest[:16].upper()}"


def _notice_item(session: Session, takedown: Takedown) -> NoticeItem:
    # Only what a host needs: URL, case number, digests, how it matched. Never the
    # victim's pseudonym or contact (NoticeItem has no field for them).
    case_type = session.execute(
        select(Case.case_type).where(Case.id == takedown.case_id)
    ).scalar_one()
    sha256 = session.execute(
        select(ScannedItem.sha256).where(ScannedItem.id == takedown.item_id)
    ).scalar()
    explanation = session.execute(
        select(Match.explanation).where(Match.id == takedown.match_id)
    ).scalar()
    if takedown.public_ref is None:
        takedown.public_ref = public_item_ref(audit.audit_key(session), takedown.id)
    return NoticeItem(
        takedown_id=takedown.id,
        # Not the case id: two notices about one victim must not be linkable by hosts.
        case_ref=takedown.public_ref,
        case_type=case_type,
        url=takedown.location,
        sha256=sha256,
        detected_at=takedown.detected_at,
        evidence=explanation or "fingerprint match",
    )


def _notice_summary(notice: RenderedNotice) -> dict[str, Any]:
    return {
        "ref": notice.notice_ref,
        "host": notice.host.domain,
        "to": notice.host.abuse_email,
        "lang": notice.lang,
        "takedowns": notice.takedown_ids,
    }


# --- listing and settling -----------------------------------------------------------------

NOTICE_STATUSES = ("drafted", "sending", "sent", "failed", "discarded")


def list_notices(
    workspace: Workspace, status: str | None = None, host: str | None = None
) -> list[dict[str, Any]]:
    """Every notice (newest first), optionally one status or one host."""
    if status is not None and status not in NOTICE_STATUSES:
        raise CaseworkError(f"status must be one of {', '.join(NOTICE_STATUSES)}")
    with workspace.session() as session:
        query = select(Notice).order_by(Notice.id.desc())
        if status:
            query = query.where(Notice.status == status)
        if host:
            query = query.where(Notice.host_domain == normalize_domain(host))
        return [
            {
                "ref": n.ref,
                "host": n.host_domain,
                "to": n.to_address,
                "lang": n.lang,
                "status": n.status,
                "created_at": n.created_at,
                "sent_at": n.sent_at,
                "error": n.error,
                "takedowns": [link.takedown_id for link in n.takedowns],
            }
            for n in session.execute(query).scalars()
        ]


def settle(
    workspace: Workspace, ref: str, delivered: bool, now: datetime | None = None
) -> dict[str, Any]:
    """Decide a notice left `sending` by an interrupted `notice send`: nobody knows whether
    the mail server took it, so an analyst who checked (the server's log, the host's reply)
    says so. Delivered: its items move to notice_sent. Not delivered: it becomes `failed`,
    and the next `notice send` retries it."""
    with workspace.session() as session:
        notice = session.execute(
            select(Notice).where(Notice.ref == ref).with_for_update()
        ).scalar_one_or_none()
        if notice is None:
            raise NotFound(f"unknown notice {ref}")
        if notice.status != "sending":
            raise CaseworkError(
                f"notice {ref} is {notice.status}; only a notice stuck in sending is settled"
            )
        audit.record(
            session, workspace.actor, "notice.settle", f"notice:{ref}", {"delivered": delivered}
        )
        if delivered:
            return {**_mark_sent(session, workspace.actor, notice, now), "status": "sent"}
        notice.status = "failed"
        notice.error = f"interrupted while sending, not delivered (said {workspace.actor})"
        return {"ref": ref, "status": "failed", "takedowns": []}


# --- sending ------------------------------------------------------------------------------


@dataclass
class SendResult:
    sent: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    # Left `sending` by an earlier, interrupted send: never retried blindly (it may have
    # been delivered); `settle` decides them.
    stuck: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "stuck_sending": self.stuck,
        }


def send(
    workspace: Workspace,
    settings: SmtpSettings,
    host: str | None = None,
    notice_ids: list[int] | None = None,
    now: datetime | None = None,
) -> SendResult:
    """Deliver every unsent notice (or those given); items move on only when delivered."""
    result = SendResult()
    with workspace.session() as session:
        query = select(Notice.id).where(Notice.status.in_(UNSENT)).order_by(Notice.id)
        if host:
            query = query.where(Notice.host_domain == normalize_domain(host))
        if notice_ids is not None:
            query = query.where(Notice.id.in_(notice_ids))
        candidates = list(session.execute(query).scalars())
        result.stuck = list(
            session.execute(select(Notice.ref).where(Notice.status == "sending")).scalars()
        )
    for notice_id in candidates:
        claimed = _claim(workspace, notice_id)
        if isinstance(claimed, dict):
            result.skipped.append(claimed)
            continue
        ref, message_bytes, to_address = claimed
        try:
            deliver(_parse(message_bytes), settings)
        except DeliveryError as exc:
            _record_failure(workspace, notice_id, str(exc))
            result.failed.append({"ref": ref, "to": to_address, "error": str(exc)})
            continue
        result.sent.append(_record_sent(workspace, notice_id, now))
    return result


def _claim(workspace: Workspace, notice_id: int) -> tuple[str, bytes, str] | dict[str, Any]:
    """Mark the notice `sending` if it is still unsent and its items still want it."""
    with workspace.session() as session:
        notice = session.execute(
            select(Notice).where(Notice.id == notice_id).with_for_update()
        ).scalar_one()
        if notice.status not in UNSENT:
            return {"ref": notice.ref, "reason": f"already {notice.status} by someone else"}
        statuses = {
            link.takedown_id: get_item(session, link.takedown_id).status
            for link in notice.takedowns
        }
        stale = {t_id: s for t_id, s in statuses.items() if s not in SENDABLE}
        if stale:
            notice.status = "discarded"
            audit.record(
                session,
                workspace.actor,
                "notice.discard",
                f"notice:{notice.ref}",
                {"why": "items changed since drafting", "items": stale},
            )
            return {
                "ref": notice.ref,
                "reason": f"items changed since drafting ({stale}); draft again",
            }
        notice.status = "sending"
        return notice.ref or "", notice.message or b"", notice.to_address


def _parse(message_bytes: bytes):  # noqa: ANN202
    from email import message_from_bytes, policy

    return message_from_bytes(message_bytes, policy=policy.SMTP)


def _record_failure(workspace: Workspace, notice_id: int, error: str) -> None:
    with workspace.session() as session:
        notice = session.get(Notice, notice_id, with_for_update=True)
        notice.status, notice.error = "failed", error  # type: ignore[union-attr]
        audit.record(
            session,
            workspace.actor,
            "notice.failed",
            f"notice:{notice.ref}",
            {"error": error},  # type: ignore[union-attr]
        )


def _record_sent(workspace: Workspace, notice_id: int, now: datetime | None) -> dict[str, Any]:
    with workspace.session() as session:
        notice = session.get(Notice, notice_id, with_for_update=True)
        assert notice is not None
        return _mark_sent(session, workspace.actor, notice, now)


def _mark_sent(
    session: Session, actor: str, notice: Notice, now: datetime | None
) -> dict[str, Any]:
    """The notice went out: its items still waiting for it become notice_sent. The caller
    holds the notice's row lock."""
    notice.status, notice.sent_at, notice.error = "sent", now or utcnow(), None
    moved = []
    for link in notice.takedowns:
        takedown = get_item(session, link.takedown_id, for_update=True)
        if takedown.status in SENDABLE:
            resend = takedown.status == "still_online"
            note = f"{'resent' if resend else 'sent'} {notice.ref} to {notice.to_address}"
            transition(session, takedown, "notice_sent", actor, note, now)
            moved.append(takedown.id)
    audit.record(
        session,
        actor,
        "notice.sent",
        f"notice:{notice.ref}",
        {"to": notice.to_address, "takedowns": moved},
    )
    return {"ref": notice.ref, "to": notice.to_address, "takedowns": moved}
