"""The server's tables: accounts, API tokens, review claims and HMA banks.

They share the store's declarative Base (so one Alembic history covers them) but live here,
beside the code that owns them; migration 0005_users creates them.
"""

from __future__ import annotations

from datetime import datetime

from ansim.store.tables import Base, utcnow
from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

ROLES = ("partner", "analyst", "supervisor", "admin")


class Account(Base):
    """A person (or a partner service) who signs in; `name` is what the audit log records."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    # argon2id (argon2-cffi); None for token-only accounts (partners).
    password_hash: Mapped[str | None] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    password_changed_at: Mapped[datetime | None]
    # The reviewer's own console settings (JSON), over the organisation's defaults.
    review_settings: Mapped[str | None] = mapped_column(Text)


class ApiToken(Base):
    """A personal API token; only the SHA-256 of its 256 random bits is kept."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ReviewClaim(Base):
    """Who is reviewing a queue item until when: an item is never handed to two at once."""

    __tablename__ = "review_claim"

    takedown_id: Mapped[int] = mapped_column(ForeignKey("takedown.id"), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]


class HmaBank(Base):
    """An HMA bank: references whose victims consented to sharing, held in one case."""

    __tablename__ = "hma_bank"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("support_case.id"))
    matching_enabled_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HmaBankContent(Base):
    """One banked item; `id` is a random 53-bit number, never a case or reference id."""

    __tablename__ = "hma_bank_content"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    bank_id: Mapped[int] = mapped_column(ForeignKey("hma_bank.id"), index=True)
    reference_id: Mapped[int] = mapped_column(ForeignKey("reference.id"), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
