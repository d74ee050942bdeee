"""Notice rendering in Korean and English, .eml and CSV output, and SMTP delivery."""

from __future__ import annotations

import csv
import email
import socket
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest
from ansim.casework.notices import (
    CSV_COLUMNS,
    HostContact,
    NoticeError,
    NoticeItem,
    Sender,
    render_notice,
    write_csv,
    write_eml,
)
from ansim.casework.smtp import DeliveryError, SmtpSettings, deliver

SENDER = Sender("Seoul Support Center", "takedown@support.example", "02-000-0000")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ITEMS = [
    NoticeItem(
        11,
        "C-2026-0004",
        "digital-sex-crime",
        "https://img.host.example/p/abc.jpg",
        "a" * 64,
        datetime(2026, 3, 1, 22, 15, tzinfo=UTC),
        "PDQ distance 12",
    ),
    NoticeItem(
        12,
        "C-2026-0009",
        "stalking",
        "https://img.host.example/p/def.png",
        None,
        datetime(2026, 3, 1, 23, 0, tzinfo=UTC),
        "SHA-256 equal",
    ),
]


def host(lang: str, form_url: str | None = None) -> HostContact:
    return HostContact("img.host.example", "abuse@host.example", form_url, lang)


def test_english_notice_lists_urls_evidence_and_the_legal_basis() -> None:
    notice = render_notice(host("en"), ITEMS, SENDER, "N-2026-0001", NOW)
    assert notice.subject == (
        "[Removal request N-2026-0001] Non-consensual intimate or abusive material on "
        "img.host.example (2 URLs)"
    )
    body = notice.body
    for item in ITEMS:
        assert item.url in body and item.case_ref in body
    assert "SHA-256 " + "a" * 64 in body and "SHA-256 n/a" in body
    assert "Article 14 (Taking photographs" in body  # digital sex crime
    assert "Article 44-2 (Request for deletion" in body  # stalking
    assert "first detected: 2026-03-01 22:15 UTC" in body
    assert "Date: 2026-03-02 09:00 UTC" in body
    assert "form:" not in body  # no form URL for this host
    assert "\n\n\n" not in body  # template blocks leave no holes


def test_korean_notice_is_in_korean_and_names_the_form() -> None:
    notice = render_notice(
        host("ko", "https://host.example/report"), ITEMS[:1], SENDER, "N-2026-0002", NOW
    )
    assert notice.subject == "[삭제 요청 N-2026-0002] img.host.example 게시물 삭제 요청 (1건)"
    assert "삭제 대상 (1건)" in notice.body
    assert "「성폭력범죄의 처벌 등에 관한 특례법」 제14조" in notice.body
    assert "「전기통신사업법」 제22조의5" in notice.body
    assert "신고 양식(https://host.example/report)" in notice.body
    assert "Article" not in notice.body


def test_language_override_and_unknown_language() -> None:
    assert render_notice(host("ko"), ITEMS, SENDER, "N-1", NOW, lang="en").lang == "en"
    with pytest.raises(NoticeError, match="no notice template for language 'fr'"):
        render_notice(host("ko"), ITEMS, SENDER, "N-1", NOW, lang="fr")


def test_host_without_abuse_contact_is_refused_with_the_fix() -> None:
    contactless = HostContact("quiet.example", None, "https://quiet.example/form", "en")
    with pytest.raises(NoticeError, match="ansim host set quiet.example --abuse-email"):
        render_notice(contactless, ITEMS, SENDER, "N-1", NOW)


def test_empty_notice_is_refused() -> None:
    with pytest.raises(NoticeError, match="no confirmed items"):
        render_notice(host("en"), [], SENDER, "N-1", NOW)


def test_eml_round_trips_with_utf8_headers_and_body(tmp_path: Path) -> None:
    notice = render_notice(host("ko"), ITEMS, SENDER, "N-2026-0003", NOW)
    path = write_eml(notice, tmp_path / "out")
    assert path.name == "N-2026-0003_img.host.example.eml"
    parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["Subject"] == notice.subject
    assert parsed["To"] == "abuse@host.example"
    assert parsed["Content-Language"] == "ko"
    assert parsed["X-Ansim-Notice"] == "N-2026-0003"
    assert parsed.get_content() == notice.body


def test_csv_has_one_row_per_url_and_reads_back(tmp_path: Path) -> None:
    english = render_notice(host("en"), ITEMS, SENDER, "N-1", NOW)
    korean = render_notice(
        HostContact("other.example", "abuse@other.example", lang="ko"),
        ITEMS[:1],
        SENDER,
        "N-2",
        NOW,
    )
    path = tmp_path / "regulator.csv"
    assert write_csv([english, korean], path) == 3
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for spreadsheet programs
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["notice_ref"], r["host"], r["url"]) for r in rows] == [
        ("N-1", "img.host.example", ITEMS[0].url),
        ("N-1", "img.host.example", ITEMS[1].url),
        ("N-2", "other.example", ITEMS[0].url),
    ]
    assert rows[2]["legal_basis"].startswith("「성폭력범죄의 처벌")
    assert rows[1]["sha256"] == ""


def test_smtp_delivery_reaches_the_local_server(smtp_server) -> None:  # noqa: ANN001
    url, handler = smtp_server
    notice = render_notice(host("ko"), ITEMS, SENDER, "N-2026-0005", NOW)
    deliver(notice.message, SmtpSettings.from_url(url))
    assert len(handler.messages) == 1
    mail_from, recipients, content = handler.messages[0]
    assert (mail_from, recipients) == ("takedown@support.example", ["abuse@host.example"])
    received = email.message_from_bytes(content, policy=policy.default)
    assert received["Subject"] == notice.subject
    assert received.get_content() == notice.body


def test_smtp_refused_recipient_is_a_delivery_error(smtp_server) -> None:  # noqa: ANN001
    url, handler = smtp_server
    refused = HostContact("img.host.example", "refuse@host.example", lang="en")
    notice = render_notice(refused, ITEMS, SENDER, "N-1", NOW)
    with pytest.raises(DeliveryError, match="550"):
        deliver(notice.message, SmtpSettings.from_url(url))
    assert handler.messages == []


def test_smtp_rejected_content_is_a_delivery_error(smtp_server) -> None:  # noqa: ANN001
    url, handler = smtp_server
    handler.reject_data = True
    notice = render_notice(host("en"), ITEMS, SENDER, "N-1", NOW)
    with pytest.raises(DeliveryError, match="554"):
        deliver(notice.message, SmtpSettings.from_url(url))


def test_smtp_server_down_is_a_delivery_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    notice = render_notice(host("en"), ITEMS, SENDER, "N-1", NOW)
    with pytest.raises(DeliveryError, match=f"cannot deliver via 127.0.0.1:{closed_port}"):
        deliver(notice.message, SmtpSettings(host="127.0.0.1", port=closed_port, timeout_s=5))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:2525", SmtpSettings("127.0.0.1", 2525)),
        (
            "smtp+starttls://bot%40c.org:p%2Fw@mail.c.org",
            SmtpSettings("mail.c.org", 587, "starttls", "bot@c.org", "p/w"),
        ),
        ("smtps://mail.c.org", SmtpSettings("mail.c.org", 465, "ssl")),
    ],
)
def test_smtp_urls(url: str, expected: SmtpSettings) -> None:
    assert SmtpSettings.from_url(url) == expected


def test_bad_smtp_url_is_explained() -> None:
    with pytest.raises(ValueError, match="use smtp://HOST:PORT"):
        SmtpSettings.from_url("http://mail.example")
