"""The command line as a client: `ansim login` against a live server, queue decisions made
as the signed-in account (a two-person rule counts accounts), supervisor-only policy,
refusal of commands that do not go through the server yet, and `ansim logout`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ansim.casework import confirmations
from ansim.store.tables import AuditEntry, Takedown
from sqlalchemy import select

from tests.server_fixtures import PASSWORD, LiveServer, ready_app, served_home

ANSIM = str(Path(sys.executable).parent / "ansim")


@pytest.fixture
def server_home(ansim_home, tmp_path):  # noqa: ANN001, ANN201
    with served_home(tmp_path) as home:
        yield home


def test_cli_through_the_server(server_home, tmp_path) -> None:  # noqa: ANN001
    workspace = server_home.workspace
    confirmations.set_rule(workspace, "digital-sex-crime", 2)
    with LiveServer(ready_app(workspace)) as server:

        def ansim(person: str, *args: str, stdin: str = "", expect: int = 0) -> str:
            env = {
                **os.environ,
                "ANSIM_SERVER": server.url,
                "ANSIM_CLIENT_FILE": str(tmp_path / f"{person}.json"),
                "ANSIM_ANALYST": "somebody-else",
                "ANSIM_HOME": str(tmp_path / "nowhere"),
            }
            done = subprocess.run(
                [ANSIM, *args], input=stdin, env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == expect, done.stdout + done.stderr
            return done.stdout + done.stderr

        assert "signed in" in ansim("alice", "login", "--name", "alice", "--password-stdin",
                                    stdin=PASSWORD + "\n")  # fmt: skip
        assert stat.S_IMODE((tmp_path / "alice.json").stat().st_mode) == 0o600
        ansim("bob", "login", "--name", "bob", "--password-stdin", stdin="wrong password\n",
              expect=2)  # fmt: skip
        ansim("bob", "login", "--name", "bob", "--password-stdin", stdin=PASSWORD + "\n")
        item = str(server_home.item_id)
        first = json.loads(ansim("alice", "queue", "confirm", item, "--json"))
        assert first["confirmations"] == ["alice"] and first["status"] == "new"
        assert "refused" in ansim("alice", "queue", "confirm", item, expect=2)
        assert "confirmed" in ansim("bob", "queue", "confirm", item)
        refused = ansim("alice", "queue", "policy", "stalking", "--confirmations", "1", expect=2)
        assert "supervisor" in refused
        assert "does not go through the server" in ansim("alice", "case", "list", expect=2)
        ansim("alice", "logout")
        assert not (tmp_path / "alice.json").exists()
    with workspace.store.session() as session:
        assert session.get(Takedown, server_home.item_id).status == "confirmed"
        actors = session.execute(
            select(AuditEntry.actor).where(AuditEntry.action == "queue.confirmation")
        ).scalars()
        assert sorted(actors) == ["alice", "bob"]
        revoked = session.execute(
            select(AuditEntry.actor).where(AuditEntry.action == "token.revoke")
        ).scalars()
        assert list(revoked) == ["alice"]
