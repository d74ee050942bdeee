"""Accounts, roles, passwords (argon2id) and personal API tokens.

Roles, each including the one before it: analyst (scan, review, confirm/reject),
supervisor (also case contacts, evidence export, confirmation policy, purge, HMA curation),
admin (also accounts, tokens of others, indexes). `partner` stands apart: an outside
service that may only hash and look up through the HMA API, with a token.

A password that fails `LOCKOUT_AFTER` times in a row locks the account for
`LOCKOUT_FOR`; every sign-in, failure, lock-out and account change is audited.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ansim.casework.errors import CaseworkError, NotFound
from ansim.casework.workspace import Workspace
from ansim.server.tables import ROLES, Account, ApiToken
from ansim.store import audit
from ansim.store.tables import utcnow
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

STAFF_ROLES = ("analyst", "supervisor", "admin")
RANK = {"analyst": 1, "supervisor": 2, "admin": 3}
MIN_PASSWORD_LENGTH = 12
LOCKOUT_AFTER = 5
LOCKOUT_FOR = timedelta(minutes=15)
TOKEN_PREFIX = "ansim_"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

_hasher = PasswordHasher()
# Verifying against this when the account does not exist costs the same time as a real
# check, so response times do not tell which names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class Principal:
    """Who is acting in a request: an account, signed in or holding a token."""

    account_id: int
    name: str
    role: str
    via: str  # session | token | anonymous

    def at_least(self, role: str) -> bool:
        return RANK.get(self.role, 0) >= RANK[role]


class LoginRefused(CaseworkError):
    """Wrong name or password, disabled, or locked: the message never says which."""


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise CaseworkError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")


def _get(session: Session, name: str) -> Account:
    account = session.execute(select(Account).where(Account.name == name)).scalar()
    if account is None:
        raise NotFound(f"unknown user {name!r}")
    return account


def describe(account: Account) -> dict[str, Any]:
    return {
        "name": account.name,
        "role": account.role,
        "disabled": account.disabled,
        "locked_until": _aware(account.locked_until).isoformat() if account.locked_until else None,
        "created_at": _aware(account.created_at).isoformat(),  # type: ignore[union-attr]
        "created_by": account.created_by,
    }


def add_user(workspace: Workspace, name: str, role: str, password: str | None) -> dict[str, Any]:
    """Create an account. Staff need a password; partners sign in with tokens only."""
    if not NAME_PATTERN.match(name):
        raise CaseworkError("user names are 1-64 of a-z 0-9 . _ - (lowercase, no spaces)")
    if role not in ROLES:
        raise CaseworkError(f"role must be one of {', '.join(ROLES)}")
    if role in STAFF_ROLES and not password:
        raise CaseworkError(f"a {role} needs a password")
    if password:
        check_password_strength(password)
    with workspace.session() as session:
        if session.execute(select(Account.id).where(Account.name == name)).scalar() is not None:
            raise CaseworkError(f"user {name!r} exists already")
        account = Account(
            name=name,
            role=role,
            password_hash=_hasher.hash(password) if password else None,
            created_by=workspace.actor,
            password_changed_at=utcnow() if password else None,
        )
        session.add(account)
        session.flush()
        audit.record(session, workspace.actor, "user.add", f"user:{name}", {"role": role})
        return describe(account)


def list_users(workspace: Workspace) -> list[dict[str, Any]]:
    with workspace.session() as session:
        return [
            describe(a) for a in session.execute(select(Account).order_by(Account.name)).scalars()
        ]


def set_disabled(workspace: Workspace, name: str, disabled: bool = True) -> dict[str, Any]:
    """Disable (or re-enable) an account; a disabled account's tokens stop working too."""
    with workspace.session() as session:
        account = _get(session, name)
        account.disabled = disabled
        if not disabled:
            account.failed_logins, account.locked_until = 0, None
        action = "user.disable" if disabled else "user.enable"
        audit.record(session, workspace.actor, action, f"user:{name}")
        return describe(account)


def set_password(workspace: Workspace, name: str, password: str) -> dict[str, Any]:
    check_password_strength(password)
    with workspace.session() as session:
        account = _get(session, name)
        account.password_hash = _hasher.hash(password)
        account.password_changed_at = utcnow()
        account.failed_logins, account.locked_until = 0, None
        audit.record(session, workspace.actor, "user.passwd", f"user:{name}")
        return describe(account)


def verify_login(workspace: Workspace, name: str, password: str, source: str) -> Principal:
    """Check a password; counts failures and locks the account after LOCKOUT_AFTER."""
    now = utcnow()
    with workspace.session() as session:
        account = session.execute(
            select(Account).where(Account.name == name).with_for_update()
        ).scalar()
        if account is None or account.password_hash is None:
            _password_matches(_DUMMY_HASH, password)
            audit.record(session, name[:64], "login.fail", f"user:{name[:64]}", {"from": source})
            raise LoginRefused("wrong user name or password, or the account is locked")
        locked_until = _aware(account.locked_until)
        matches = _password_matches(account.password_hash, password)
        if account.disabled or (locked_until is not None and locked_until > now):
            audit.record(
                session, name, "login.refused", f"user:{name}", {"from": source, "locked": True}
            )
            raise LoginRefused("wrong user name or password, or the account is locked")
        if not matches:
            account.failed_logins += 1
            detail: dict[str, Any] = {"from": source, "failures": account.failed_logins}
            if account.failed_logins >= LOCKOUT_AFTER:
                account.locked_until = now + LOCKOUT_FOR
                account.failed_logins = 0
                detail["locked_until"] = account.locked_until.isoformat()
                audit.record(session, name, "login.lockout", f"user:{name}", detail)
            else:
                audit.record(session, name, "login.fail", f"user:{name}", detail)
        else:
            account.failed_logins, account.locked_until = 0, None
            if _hasher.check_needs_rehash(account.password_hash):
                account.password_hash = _hasher.hash(password)
            audit.record(session, name, "login.ok", f"user:{name}", {"from": source})
            return Principal(account.id, account.name, account.role, "session")
    raise LoginRefused("wrong user name or password, or the account is locked")


def _password_matches(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


BLUR_LEVELS = ("light", "medium", "strong")
REVEAL_MODES = ("hold", "toggle")


@dataclass(frozen=True)
class ReviewSettings:
    """How the console veils media for one reviewer (the organisation's defaults first)."""

    blur: str = "medium"
    greyscale: bool = True
    reveal: str = "hold"  # hold: press and hold; toggle: click to reveal, click to veil

    @classmethod
    def parse(cls, text: str | None, defaults: ReviewSettings) -> ReviewSettings:
        try:
            stored = json.loads(text) if text else {}
        except ValueError:
            stored = {}
        merged = {**defaults.__dict__, **(stored if isinstance(stored, dict) else {})}
        return cls.checked(merged)

    @classmethod
    def checked(cls, values: dict[str, Any]) -> ReviewSettings:
        blur, reveal = str(values.get("blur")), str(values.get("reveal"))
        if blur not in BLUR_LEVELS:
            raise CaseworkError(f"blur must be one of {', '.join(BLUR_LEVELS)}")
        if reveal not in REVEAL_MODES:
            raise CaseworkError(f"reveal must be one of {', '.join(REVEAL_MODES)}")
        return cls(blur=blur, greyscale=bool(values.get("greyscale")), reveal=reveal)


def review_settings(workspace: Workspace, name: str, defaults: ReviewSettings) -> ReviewSettings:
    with workspace.store.read_session() as session:
        return ReviewSettings.parse(_get(session, name).review_settings, defaults)


def set_review_settings(workspace: Workspace, name: str, settings: ReviewSettings) -> None:
    with workspace.session() as session:
        _get(session, name).review_settings = json.dumps(settings.__dict__)
        audit.record(session, name, "user.review_settings", f"user:{name}", settings.__dict__)


def principal_for(workspace: Workspace, account_id: int) -> Principal | None:
    """The account behind a live session, unless it was disabled since."""
    with workspace.store.read_session() as session:
        account = session.get(Account, account_id)
        if account is None or account.disabled:
            return None
        return Principal(account.id, account.name, account.role, "session")


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(workspace: Workspace, user: str, name: str) -> dict[str, Any]:
    """A new token for `user`; the token itself is returned once and never stored."""
    if not 1 <= len(name) <= 64:
        raise CaseworkError("token names are 1-64 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with workspace.session() as session:
        account = _get(session, user)
        row = ApiToken(account_id=account.id, name=name, token_sha256=_token_digest(token))
        session.add(row)
        session.flush()
        audit.record(
            session,
            workspace.actor,
            "token.create",
            f"user:{user}",
            {"token": row.id, "name": name},
        )
        return {"id": row.id, "user": user, "name": name, "token": token}


def list_tokens(workspace: Workspace, user: str | None = None) -> list[dict[str, Any]]:
    with workspace.session() as session:
        query = select(ApiToken, Account.name).join(Account, ApiToken.account_id == Account.id)
        if user:
            query = query.where(Account.name == user)
        return [
            {
                "id": token.id,
                "user": owner,
                "name": token.name,
                "created_at": _aware(token.created_at).isoformat(),  # type: ignore[union-attr]
                "last_used_at": _iso(token.last_used_at),
                "revoked_at": _iso(token.revoked_at),
            }
            for token, owner in session.execute(query.order_by(ApiToken.id))
        ]


def _iso(moment: datetime | None) -> str | None:
    return _aware(moment).isoformat() if moment else None  # type: ignore[union-attr]


def revoke_token(workspace: Workspace, token_id: int) -> dict[str, Any]:
    with workspace.session() as session:
        token = session.get(ApiToken, token_id)
        if token is None:
            raise NotFound(f"unknown token id {token_id}")
        if token.revoked_at is None:
            token.revoked_at = utcnow()
        audit.record(session, workspace.actor, "token.revoke", f"token:{token_id}")
        return {"id": token.id, "revoked_at": _iso(token.revoked_at)}


def revoke_token_value(workspace: Workspace, token: str) -> dict[str, Any]:
    """Revoke a token given the token itself (`ansim logout`)."""
    with workspace.store.read_session() as session:
        token_id = session.execute(
            select(ApiToken.id).where(ApiToken.token_sha256 == _token_digest(token))
        ).scalar()
    if token_id is None:
        raise NotFound("unknown token")
    return revoke_token(workspace, token_id)


def authenticate_token(workspace: Workspace, token: str) -> Principal | None:
    """The account a bearer token belongs to, if the token is live and the account enabled."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    with workspace.store.read_session() as session:
        row = session.execute(
            select(ApiToken, Account)
            .join(Account, ApiToken.account_id == Account.id)
            .where(ApiToken.token_sha256 == _token_digest(token))
        ).first()
    if row is None:
        return None
    api_token, account = row
    if api_token.revoked_at is not None or account.disabled:
        return None
    return Principal(account.id, account.name, account.role, "token")


def touch_token(workspace: Workspace, token: str) -> None:
    """Record when a token was last used (the server calls this at most once a minute)."""
    with workspace.store.session() as session:
        row = session.execute(
            select(ApiToken).where(ApiToken.token_sha256 == _token_digest(token))
        ).scalar()
        if row is not None:
            row.last_used_at = utcnow()
