"""The store's tables. Changing one means writing an Alembic migration beside it.

No `from __future__ import annotations` here: SQLAlchemy would then evaluate every column's
annotation from its string, ~0.1 s of every command's start-up. Only the relationships,
which name classes defined later, are written as strings."""

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

TAKEDOWN_STATUSES = (
    "new",
    "confirmed",
    "rejected",
    "notice_sent",
    "still_online",
    "escalated",
    "removed",
    "reappeared",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True)}


class Case(Base):
    __tablename__ = "support_case"

    id: Mapped[str] = mapped_column(String(20), primary_key=True)  # C-2026-0001
    case_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")
    assigned_to: Mapped[str | None] = mapped_column(String(64))
    # Plaintext pseudonyms of homes made before 0004; `ansim key rotate` encrypts them.
    pseudonym: Mapped[str | None] = mapped_column(String(128))
    pseudonym_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Fernet tokens bound to this case (store.crypto associated data); the key lives
    # outside the database.
    contact_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]

    services: Mapped[list["Service"]] = relationship(back_populates="case", order_by="Service.id")
    references: Mapped[list["Reference"]] = relationship(back_populates="case")


class Service(Base):
    """One support service given to a case (the center's one-stop record)."""

    __tablename__ = "service"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("support_case.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    given_on: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")  # plaintext before 0004 only
    note_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    recorded_by: Mapped[str] = mapped_column(String(64))

    case: Mapped["Case"] = relationship(back_populates="services")


class Reference(Base):
    """What a victim reported: its signals only, never the media itself."""

    __tablename__ = "reference"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("support_case.id"), index=True)
    modality: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(256))  # plaintext before 0004 only
    label_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    origin: Mapped[str] = mapped_column(String(16), default="file")  # file | import
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    consent: Mapped[str] = mapped_column(String(16), default="given")  # given | withdrawn
    withdrawn_at: Mapped[datetime | None]

    case: Mapped["Case"] = relationship(back_populates="references")
    signals: Mapped[list["Signal"]] = relationship(
        back_populates="reference", cascade="all, delete-orphan"
    )


class ScannedItem(Base):
    """One file or URL that was fingerprinted by a scan or a crawl."""

    __tablename__ = "scanned_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    location: Mapped[str] = mapped_column(Text)  # a path or a URL
    modality: Mapped[str | None] = mapped_column(String(16))
    mime: Mapped[str | None] = mapped_column(String(128))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    md5: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    scanned_at: Mapped[datetime] = mapped_column(default=utcnow)

    signals: Mapped[list["Signal"]] = relationship(
        back_populates="item", cascade="all, delete-orphan"
    )


class Signal(Base):
    """One fingerprint of a reference or of a scanned item.

    Its id is the entry id in every index, so a hit maps straight back to its owner.
    `value` holds text signals (hex hashes), `blob` binary ones (landmarks, descriptors).
    """

    __tablename__ = "signal"
    __table_args__ = (
        Index("ix_signal_kind_value", "kind", "value"),
        # The owner indexes hold only rows with that owner (migration 0008): a row has one
        # owner, and a bulk import of reference signals need not build item indexes of NULLs.
        Index(
            "ix_signal_kind_item",
            "kind",
            "item_id",
            sqlite_where=text("item_id IS NOT NULL"),
            postgresql_where=text("item_id IS NOT NULL"),
        ),
        Index(
            "ix_signal_item_id",
            "item_id",
            sqlite_where=text("item_id IS NOT NULL"),
            postgresql_where=text("item_id IS NOT NULL"),
        ),
        Index(
            "ix_signal_reference_id",
            "reference_id",
            sqlite_where=text("reference_id IS NOT NULL"),
            postgresql_where=text("reference_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference_id: Mapped[int | None] = mapped_column(ForeignKey("reference.id", ondelete="CASCADE"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("scanned_item.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # sha256 | md5 | pdq | ...
    value: Mapped[str | None] = mapped_column(String(128))
    quality: Mapped[int | None] = mapped_column(Integer)
    frame: Mapped[int | None] = mapped_column(Integer)
    timestamp: Mapped[float | None] = mapped_column(Float)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)

    reference: Mapped["Reference | None"] = relationship(back_populates="signals")
    item: Mapped["ScannedItem | None"] = relationship(back_populates="signals")


class Match(Base):
    __tablename__ = "match"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("scanned_item.id"), index=True)
    reference_id: Mapped[int] = mapped_column(ForeignKey("reference.id"), index=True)
    signal: Mapped[str] = mapped_column(String(32))
    distance: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    explanation: Mapped[str] = mapped_column(Text, default="")
    # Local-feature matches: where the reference sits in the item, JSON [[x, y] x 4] as
    # shares of the item's width and height (see detector.decision.Decision.region).
    region: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Takedown(Base):
    """One location to get removed for one case; its history is in TakedownEvent."""

    __tablename__ = "takedown"
    # One open item per (location, case); content that comes back at a removed location
    # gets a new item one generation up, linked to the removed one by `reappearance_of`.
    __table_args__ = (
        UniqueConstraint("location", "case_id", "generation", name="uq_takedown_location_case"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("support_case.id"), index=True)
    reference_id: Mapped[int] = mapped_column(ForeignKey("reference.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("scanned_item.id"))
    match_id: Mapped[int] = mapped_column(ForeignKey("match.id"))
    location: Mapped[str] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reappearance_of: Mapped[int | None] = mapped_column(
        ForeignKey("takedown.id", name="fk_takedown_reappearance_of"), index=True
    )
    # What notices call this item: a keyed hash, so hosts cannot link a victim's reports
    # through a shared case id. The mapping back is this column.
    public_ref: Mapped[str | None] = mapped_column(String(32), index=True)

    events: Mapped[list["TakedownEvent"]] = relationship(order_by="TakedownEvent.id")


class TakedownEvent(Base):
    __tablename__ = "takedown_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    takedown_id: Mapped[int] = mapped_column(ForeignKey("takedown.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


class AuditEntry(Base):
    """Append-only, hash-chained: `entry_hash` covers the row and the previous hash."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """A single row locked while appending, so concurrent writers never fork the chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    entry_hash: Mapped[str] = mapped_column(String(64), default="0" * 64)


class Host(Base):
    """Where removal notices for a domain (and its subdomains) go."""

    __tablename__ = "host"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    abuse_email: Mapped[str | None] = mapped_column(String(320))
    form_url: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str] = mapped_column(String(2), default="en")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))


class Notice(Base):
    """One removal notice to one host; `message` is the exact .eml that was (to be) sent."""

    __tablename__ = "notice"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str | None] = mapped_column(String(32), unique=True)  # N-2026-00001
    host_domain: Mapped[str] = mapped_column(ForeignKey("host.domain"), index=True)
    lang: Mapped[str] = mapped_column(String(2))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="drafted")  # drafted|sent|failed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)

    takedowns: Mapped[list["NoticeTakedown"]] = relationship(
        order_by="NoticeTakedown.takedown_id", cascade="all, delete-orphan"
    )


class NoticeTakedown(Base):
    """Which queue items a notice lists (an item is listed again when its notice is resent)."""

    __tablename__ = "notice_takedown"

    notice_id: Mapped[int] = mapped_column(ForeignKey("notice.id"), primary_key=True)
    takedown_id: Mapped[int] = mapped_column(ForeignKey("takedown.id"), primary_key=True)


class Recheck(Base):
    """One verification fetch of a notified URL, whatever it found."""

    __tablename__ = "recheck"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    takedown_id: Mapped[int] = mapped_column(ForeignKey("takedown.id"), index=True)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
    verdict: Mapped[str] = mapped_column(String(16))  # gone | online | unreachable
    reason: Mapped[str] = mapped_column(Text, default="")
    http_status: Mapped[int | None] = mapped_column(Integer)
    final_url: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))


class Confirmation(Base):
    """One analyst's confirmation of a queue item; the database refuses the same one twice."""

    __tablename__ = "confirmation"
    __table_args__ = (
        UniqueConstraint("takedown_id", "analyst", name="uq_confirmation_takedown_analyst"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    takedown_id: Mapped[int] = mapped_column(ForeignKey("takedown.id"), index=True)
    analyst: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)  # plaintext before 0004 only
    note_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)


class ConfirmationRule(Base):
    """How many analysts must confirm items of a case type (absent: one)."""

    __tablename__ = "confirmation_rule"

    case_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    required: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))


class CrawlRun(Base):
    """One `ansim crawl run`: its seeds, options and summary; `--resume` continues it."""

    __tablename__ = "crawl_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | finished
    options: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    summary: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    log_path: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class CrawlUrl(Base):
    """The frontier and the visited set in one table: a URL of a run and what became of it.

    state: pending -> done | failed | skipped. A row is finished in the same transaction
    as everything its fetch produced (items, matches, takedowns), so a crash leaves it
    pending, never half-recorded.
    """

    __tablename__ = "crawl_url"
    __table_args__ = (
        UniqueConstraint("run_id", "url_hash", name="uq_crawl_url_run_url"),
        Index("ix_crawl_url_run_state", "run_id", "state", "depth"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_run.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    url_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the normalized URL
    kind: Mapped[str] = mapped_column(String(8))  # page | media
    depth: Mapped[int] = mapped_column(Integer, default=0)
    referrer_id: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12), default="pending")
    outcome: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    final_url: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(128))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    resolved_ip: Mapped[str | None] = mapped_column(String(64))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("scanned_item.id"))
    discovered_at: Mapped[datetime] = mapped_column(default=utcnow)
    fetched_at: Mapped[datetime | None]


class Evidence(Base):
    """A sealed WARC bundle (crawler.evidence) proving where a match was found."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bundle_id: Mapped[str] = mapped_column(String(64), index=True)  # one per takedown it proves
    takedown_id: Mapped[int | None] = mapped_column(ForeignKey("takedown.id"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("scanned_item.id"), index=True)
    page_url: Mapped[str | None] = mapped_column(Text)
    media_url: Mapped[str] = mapped_column(Text)
    warc_sha256: Mapped[str] = mapped_column(String(64))
    records: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The bundle's own Fernet key, encrypted with the data key. A purge deletes it, which
    # makes the sealed files unreadable even if a copy survives (crypto-shredding).
    # Bundles sealed before 0004 have none: they are sealed with the data key itself.
    data_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)


class AuditPrivate(Base):
    """The free text of an audit entry (notes, URLs, addresses, digests), kept out of the
    chain: the chained detail holds only its keyed hash, so a purge can delete this row
    and the chain still verifies. Encrypted with the data key, bound to its entry."""

    __tablename__ = "audit_private"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[str | None] = mapped_column(String(20), index=True)
    detail_encrypted: Mapped[bytes] = mapped_column(LargeBinary)


class StoreSetting(Base):
    """Facts about the store itself: the data key's check value, where the unkeyed
    (pre-0004) audit chain ends."""

    __tablename__ = "store_setting"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class NoticeFile(Base):
    """A file a notice was written to (.eml, regulator CSV): a purge deletes it."""

    __tablename__ = "notice_file"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notice.id"), index=True)
    path: Mapped[str] = mapped_column(Text)


class BankCounter(Base):
    """Entries and the last signal id ever held of one signal bank (signal kind x owner,
    "reference" or "item"): the checkpoint a bank's index is checked against. Kept by
    triggers on `signal` and `reference` (migration 0007); only a bulk hash-list import on
    SQLite, which drops the triggers for its transaction, writes it itself."""

    __tablename__ = "bank_counter"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(16), primary_key=True)
    entries: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
