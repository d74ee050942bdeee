"""Removal notices: one per host, rendered from Jinja2 templates (Korean or English),
written as .eml files, and a CSV of every listed URL for bulk submission to a regulator.

Pure: the caller picks the items and the host; nothing here reads the store. The template
context is built from `NoticeItem`s, which have no field for the victim's name, pseudonym or
contact, so a notice cannot carry them.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

from ansim.store.private_files import private_dir, write_private

if TYPE_CHECKING:
    from jinja2 import Environment

LANGUAGES = ("ko", "en")

# Statutes a removal request rests on, per case type. Korean law names as in the statute
# book, English as in the Korea Legislation Research Institute's translations.
LEGAL_BASIS: dict[str, dict[str, list[str]]] = {
    "digital-sex-crime": {
        "ko": [
            "「성폭력범죄의 처벌 등에 관한 특례법」 제14조(카메라 등을 이용한 촬영) "
            "및 제14조의2(허위영상물 등의 반포등)",
            "「성폭력방지 및 피해자보호 등에 관한 법률」 제7조의3(불법촬영물등으로 인한 "
            "피해자에 대한 지원 등)",
            "「전기통신사업법」 제22조의5(부가통신사업자의 불법촬영물등 유통방지)",
            "「정보통신망 이용촉진 및 정보보호 등에 관한 법률」 제44조의7(불법정보의 유통금지 등)",
        ],
        "en": [
            "Act on Special Cases Concerning the Punishment of Sexual Crimes, Article 14 "
            "(Taking photographs using cameras, etc.) and Article 14-2 (Distribution of "
            "false video material, etc.)",
            "Sexual Violence Prevention and Victims Protection Act, Article 7-3 (Support for "
            "victims of illegally filmed material, etc.)",
            "Telecommunications Business Act, Article 22-5 (Prevention of distribution of "
            "illegally filmed material, etc. by value-added telecommunications providers)",
            "Act on Promotion of Information and Communications Network Utilization and "
            "Information Protection, Article 44-7 (Prohibition on distribution of unlawful "
            "information)",
        ],
    },
    "child-exploitation": {
        "ko": [
            "「아동·청소년의 성보호에 관한 법률」 제11조(아동·청소년성착취물의 제작·배포 등)",
            "「전기통신사업법」 제22조의5(부가통신사업자의 불법촬영물등 유통방지)",
            "「정보통신망 이용촉진 및 정보보호 등에 관한 법률」 제44조의7(불법정보의 유통금지 등)",
        ],
        "en": [
            "Act on the Protection of Children and Youth against Sex Offenses, Article 11 "
            "(Production, distribution, etc. of child or youth sexual exploitation material)",
            "Telecommunications Business Act, Article 22-5 (Prevention of distribution of "
            "illegally filmed material, etc. by value-added telecommunications providers)",
            "Act on Promotion of Information and Communications Network Utilization and "
            "Information Protection, Article 44-7 (Prohibition on distribution of unlawful "
            "information)",
        ],
    },
    "stalking": {
        "ko": [
            "「스토킹범죄의 처벌 등에 관한 법률」 제2조(정의)",
            "「정보통신망 이용촉진 및 정보보호 등에 관한 법률」 제44조의2(정보의 삭제요청 등)",
        ],
        "en": [
            "Act on the Punishment of Stalking Crimes, Article 2 (Definitions)",
            "Act on Promotion of Information and Communications Network Utilization and "
            "Information Protection, Article 44-2 (Request for deletion of information)",
        ],
    },
}
DEFAULT_LEGAL_BASIS = {
    "ko": ["「정보통신망 이용촉진 및 정보보호 등에 관한 법률」 제44조의2(정보의 삭제요청 등)"],
    "en": [
        "Act on Promotion of Information and Communications Network Utilization and "
        "Information Protection, Article 44-2 (Request for deletion of information)"
    ],
}

CSV_COLUMNS = (
    "notice_ref",
    "case_ref",
    "case_type",
    "host",
    "url",
    "detected_at",
    "sha256",
    "evidence",
    "legal_basis",
)


class NoticeError(ValueError):
    """A notice that cannot be drafted (no contact, unknown language...)."""


@dataclass(frozen=True)
class HostContact:
    domain: str
    abuse_email: str | None = None
    form_url: str | None = None
    lang: str = "en"


@dataclass(frozen=True)
class Sender:
    organization: str
    email: str
    phone: str | None = None


@dataclass(frozen=True)
class NoticeItem:
    """One URL in a notice: everything the host needs to find and judge it, nothing more."""

    takedown_id: int
    case_ref: str
    case_type: str
    url: str
    sha256: str | None
    detected_at: datetime
    evidence: str  # how it matched, e.g. "PDQ distance 12"


@dataclass
class RenderedNotice:
    notice_ref: str
    host: HostContact
    lang: str
    subject: str
    body: str
    items: list[NoticeItem]
    message: EmailMessage

    @property
    def takedown_ids(self) -> list[int]:
        return [item.takedown_id for item in self.items]


@functools.cache
def _templates() -> Environment:
    """The notice templates; Jinja2 is imported only when a notice is rendered (listing hosts
    or notices must not pay for it)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("ansim.casework", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # plain-text mail, not HTML
    )


def legal_basis(case_types: Iterable[str], lang: str) -> list[str]:
    """The statutes for every case type in a notice, each once, in first-seen order."""
    seen: list[str] = []
    for case_type in case_types:
        for basis in LEGAL_BASIS.get(case_type, DEFAULT_LEGAL_BASIS)[lang]:
            if basis not in seen:
                seen.append(basis)
    return seen


def _stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_notice(
    host: HostContact,
    items: Sequence[NoticeItem],
    sender: Sender,
    notice_ref: str,
    now: datetime,
    lang: str | None = None,
) -> RenderedNotice:
    """Render the notice for one host; raises NoticeError when it cannot be sent there."""
    lang = lang or host.lang
    if lang not in LANGUAGES:
        raise NoticeError(f"no notice template for language {lang!r} (have: ko, en)")
    if not items:
        raise NoticeError(f"no confirmed items for {host.domain}")
    if not host.abuse_email:
        raise NoticeError(
            f"host {host.domain} has no abuse e-mail: "
            f"run `ansim host set {host.domain} --abuse-email ADDRESS`"
        )
    template = _templates().get_template(f"notice.{lang}.txt.j2")
    context = {
        "sender": sender,
        "host": host,
        "items": [
            {
                "url": item.url,
                "case_ref": item.case_ref,
                "detected_at": _stamp(item.detected_at),
                "sha256": item.sha256,
                "evidence": item.evidence,
            }
            for item in items
        ],
        "legal_basis": legal_basis((item.case_type for item in items), lang),
        "notice_ref": notice_ref,
        "sent_on": _stamp(now),
    }
    module = template.make_module(context)
    subject = str(module.subject)
    body = str(module).rstrip("\n") + "\n"
    message = EmailMessage()
    message.set_content(body, charset="utf-8")  # first: it clears every Content-* header
    message["From"] = f"{sender.organization} <{sender.email}>"
    message["To"] = host.abuse_email
    message["Subject"] = subject
    message["Date"] = format_datetime(now.astimezone(UTC))
    message["Message-ID"] = make_msgid(idstring=notice_ref, domain=sender.email.split("@")[-1])
    message["Content-Language"] = lang
    message["X-Ansim-Notice"] = notice_ref
    return RenderedNotice(notice_ref, host, lang, subject, body, list(items), message)


def eml_filename(notice: RenderedNotice) -> str:
    safe_host = re.sub(r"[^A-Za-z0-9.-]", "_", notice.host.domain)
    return f"{notice.notice_ref}_{safe_host}.eml"


def write_eml(notice: RenderedNotice, directory: Path) -> Path:
    """A 0600 file in a 0700 folder: it lists the victim's URLs."""
    private_dir(directory)
    return write_private(directory / eml_filename(notice), notice.message.as_bytes())


def write_csv(notices: Iterable[RenderedNotice], path: Path) -> int:
    """One row per listed URL; UTF-8 with a BOM so spreadsheet programs read the Hangul."""
    private_dir(path.parent)
    rows = 0
    path.unlink(missing_ok=True)
    with open(
        path, "w", newline="", encoding="utf-8-sig", opener=lambda p, f: os.open(p, f, 0o600)
    ) as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for notice in notices:
            for item in notice.items:
                writer.writerow(
                    [
                        notice.notice_ref,
                        item.case_ref,
                        item.case_type,
                        notice.host.domain,
                        item.url,
                        _stamp(item.detected_at),
                        item.sha256 or "",
                        item.evidence,
                        " | ".join(legal_basis([item.case_type], notice.lang)),
                    ]
                )
                rows += 1
    return rows
