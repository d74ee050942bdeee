"""Shared fixtures: where the benign test media lives, and a throwaway ansim home."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ansim.casework.workspace import Workspace
    from ansim.store.db import Store

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    return Path(os.environ.get("ANSIM_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path} (set ANSIM_SHARED_DATA)")
    return path


@pytest.fixture
def ansim_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $ANSIM_HOME with its SQLite store, for tests that go through casework or the CLI."""
    home = tmp_path / "ansim-home"
    monkeypatch.setenv("ANSIM_HOME", str(home))
    monkeypatch.delenv("ANSIM_DB_URL", raising=False)
    monkeypatch.delenv("ANSIM_KEY_FILE", raising=False)
    return home


# --- Database backends -------------------------------------------------------------------
# Store tests take `db_url` (an empty database) or `store` (a migrated one) and run once on
# SQLite and once on PostgreSQL. The PostgreSQL run needs ANSIM_TEST_PG_URL: a URL of a
# server where this user may create databases (`scripts/pg-test-cluster run -- pytest`
# starts a throwaway one; `make test` does that). Each test gets a database of its own.

PG_URL_ENV = "ANSIM_TEST_PG_URL"
BACKENDS = ("sqlite", "postgresql")


def _pg_admin_url() -> str | None:
    url = os.environ.get(PG_URL_ENV)
    if not url:
        return None
    from ansim.store.db import normalize_url

    return normalize_url(url)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on each backend (SQLite file; fresh PostgreSQL database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ansim.store.db'}"
        return
    admin_url = _pg_admin_url()
    if admin_url is None:
        pytest.skip(f"{PG_URL_ENV} is not set (run through scripts/pg-test-cluster)")
    yield from _fresh_pg_database(admin_url)


def _fresh_pg_database(admin_url: str) -> Iterator[str]:
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"ansim_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on each backend."""
    from ansim.store.db import Store

    opened = Store(db_url)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.dispose()


@pytest.fixture
def backend_home(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $ANSIM_HOME whose store is on each backend (ANSIM_DB_URL set for PostgreSQL)."""
    home = tmp_path / "ansim-home"
    monkeypatch.setenv("ANSIM_HOME", str(home))
    monkeypatch.delenv("ANSIM_KEY_FILE", raising=False)
    if db_url.startswith("sqlite"):
        monkeypatch.delenv("ANSIM_DB_URL", raising=False)
    else:
        monkeypatch.setenv("ANSIM_DB_URL", db_url)
    return home


@pytest.fixture
def backend_workspace(backend_home: Path) -> Iterator[Workspace]:
    """An initialised workspace on each backend, closed afterwards."""
    from ansim.pipeline.workspaces import init_workspace

    opened, _ = init_workspace()
    try:
        yield opened
    finally:
        opened.close()


# --- A local SMTP server -----------------------------------------------------------------


class RecordingSmtpHandler:
    """Keeps every accepted message; refuses recipients whose address starts with `refuse`
    and refuses message content while `reject_data` is set."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.reject_data = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201, N802
        if address.startswith("refuse"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        if self.reject_data:
            return "554 5.7.1 message rejected as spam"
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK queued"


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, RecordingSmtpHandler]]:
    """An aiosmtpd server on a free loopback port: yields (smtp://127.0.0.1:PORT, handler)."""
    import socket

    aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = RecordingSmtpHandler()
    controller = aiosmtpd_controller.Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", handler
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def hostile_site():
    """The hostile test site (tests/hostile_site.py) served on 127.0.0.1 for the session."""
    from tests.hostile_site import HostileSite
    from tests.localserve import LocalServer

    site = HostileSite()
    with LocalServer(site.app) as server:
        site.server = server
        yield site
