"""Accounts, passwords, lock-out and API tokens (`ansim user`, `ansim token`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ansim.casework.errors import CaseworkError
from ansim.pipeline.workspaces import init_workspace
from ansim.server import accounts
from ansim.server.accounts import LOCKOUT_AFTER, LoginRefused
from ansim.server.tables import Account, ApiToken
from ansim.store.tables import AuditEntry
from sqlalchemy import select

ANSIM = str(Path(sys.executable).parent / "ansim")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def workspace(ansim_home: Path):
    workspace, _ = init_workspace()
    yield workspace
    workspace.close()


def actions(workspace) -> list[str]:
    with workspace.store.session() as session:
        return list(session.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars())


def test_add_list_and_refusals(workspace) -> None:
    added = accounts.add_user(workspace, "alice", "analyst", PASSWORD)
    assert added["role"] == "analyst" and not added["disabled"]
    with pytest.raises(CaseworkError, match="exists already"):
        accounts.add_user(workspace, "alice", "admin", PASSWORD)
    with pytest.raises(CaseworkError, match="at least 12"):
        accounts.add_user(workspace, "bob", "analyst", "short")
    with pytest.raises(CaseworkError, match="role must be"):
        accounts.add_user(workspace, "bob", "root", PASSWORD)
    with pytest.raises(CaseworkError, match="user names"):
        accounts.add_user(workspace, "Bob Smith", "analyst", PASSWORD)
    with pytest.raises(CaseworkError, match="needs a password"):
        accounts.add_user(workspace, "bob", "supervisor", None)
    accounts.add_user(workspace, "coop", "partner", None)
    assert [u["name"] for u in accounts.list_users(workspace)] == ["alice", "coop"]
    with workspace.store.session() as session:
        stored = session.execute(
            select(Account.password_hash).where(Account.name == "alice")
        ).scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert actions(workspace).count("user.add") == 2


def test_login_lockout_and_disable(workspace) -> None:
    accounts.add_user(workspace, "alice", "analyst", PASSWORD)
    principal = accounts.verify_login(workspace, "alice", PASSWORD, "127.0.0.1")
    assert (principal.name, principal.role) == ("alice", "analyst")
    for _ in range(LOCKOUT_AFTER):
        with pytest.raises(LoginRefused):
            accounts.verify_login(workspace, "alice", "wrong password!!", "127.0.0.1")
    # Locked: even the right password is refused, with the same message.
    with pytest.raises(LoginRefused, match="wrong user name or password"):
        accounts.verify_login(workspace, "alice", PASSWORD, "127.0.0.1")
    assert "login.lockout" in actions(workspace)
    accounts.set_password(workspace, "alice", PASSWORD + "!")  # an admin's reset lifts it
    assert accounts.verify_login(workspace, "alice", PASSWORD + "!", "127.0.0.1").name == "alice"
    accounts.set_disabled(workspace, "alice")
    with pytest.raises(LoginRefused):
        accounts.verify_login(workspace, "alice", PASSWORD + "!", "127.0.0.1")
    with pytest.raises(LoginRefused):
        accounts.verify_login(workspace, "nobody", PASSWORD, "127.0.0.1")


def test_tokens_are_stored_hashed_and_revocable(workspace) -> None:
    accounts.add_user(workspace, "coop", "partner", None)
    created = accounts.create_token(workspace, "coop", "laptop")
    token = created["token"]
    assert token.startswith("ansim_") and len(token) > 40
    principal = accounts.authenticate_token(workspace, token)
    assert principal is not None and (principal.name, principal.role) == ("coop", "partner")
    assert accounts.authenticate_token(workspace, token + "x") is None
    with workspace.store.session() as session:
        stored = list(session.execute(select(ApiToken.token_sha256)).scalars())
    assert token not in stored and len(stored[0]) == 64
    assert token.encode() not in (workspace.home.root / "ansim.db").read_bytes()
    accounts.revoke_token(workspace, created["id"])
    assert accounts.authenticate_token(workspace, token) is None
    second = accounts.create_token(workspace, "coop", "server")["token"]
    accounts.set_disabled(workspace, "coop")
    assert accounts.authenticate_token(workspace, second) is None


def test_cli_user_and_token_commands(ansim_home: Path) -> None:
    def ansim(*args: str, stdin: str = "", expect: int = 0) -> str:
        done = subprocess.run(
            [ANSIM, *args], input=stdin, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == expect, done.stderr
        return done.stdout

    ansim("init")
    ansim("user", "add", "alice", "--role", "supervisor", "--password-stdin", stdin=PASSWORD + "\n")
    ansim("user", "add", "bob", "--role", "analyst", "--password-stdin", stdin="short\n", expect=2)
    users = json.loads(ansim("user", "list", "--json"))
    assert [(u["name"], u["role"]) for u in users] == [("alice", "supervisor")]
    token = json.loads(ansim("token", "create", "--name", "laptop", "--user", "alice", "--json"))
    listed = json.loads(ansim("token", "list", "--json"))
    assert listed[0]["name"] == "laptop" and "token" not in listed[0]
    assert token["token"] not in json.dumps(listed)
    assert json.loads(ansim("token", "revoke", str(token["id"]), "--json"))["revoked_at"]
    ansim("user", "disable", "nobody", expect=2)
