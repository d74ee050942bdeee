"""The store migrates and round-trips rows on every backend the suite is given."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from ansim.store.db import Store, normalize_url, schema_is_current
from ansim.store.tables import Case, Service
from sqlalchemy import select


def test_normalize_url_sends_plain_postgresql_urls_through_psycopg() -> None:
    assert (
        normalize_url("postgresql://u:p@127.0.0.1:5/db")
        == "postgresql+psycopg://u:p@127.0.0.1:5/db"
    )
    assert normalize_url("postgres://h/db") == "postgresql+psycopg://h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_migrated_store_round_trips_a_case(store: Store, db_url: str) -> None:
    assert schema_is_current(store.engine)
    expected_dialect = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    assert store.engine.dialect.name == expected_dialect
    given_on = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    with store.session() as session:
        session.add(Case(id="C-2026-0001", case_type="stalking", pseudonym="P1"))
        session.flush()
        session.add(
            Service(case_id="C-2026-0001", kind="deletion", given_on=given_on, recorded_by="a")
        )
    with store.session() as session:
        case = session.execute(select(Case)).scalar_one()
        assert case.pseudonym == "P1"
        assert [s.kind for s in case.services] == ["deletion"]


def test_migrations_match_the_models(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from ansim.server import tables as server_tables  # its tables live on the store's Base
    from ansim.store.tables import Base

    assert "account" in server_tables.Base.metadata.tables

    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_a_read_session_does_not_wait_for_a_writer(store: Store) -> None:
    # A crawl writes while its hashing workers read the references: the readers must not
    # queue behind the writer's lock (SQLite takes it at BEGIN IMMEDIATE).
    with store.session() as session:
        session.add(Case(id="C-2026-0002", case_type="stalking", pseudonym="P2"))
    writer_holds, reader_done = threading.Event(), threading.Event()
    found: list[str] = []

    def write_and_hold() -> None:
        with store.session() as session:
            session.add(Case(id="C-2026-0003", case_type="stalking", pseudonym="P3"))
            session.flush()
            writer_holds.set()
            # Released early only if the reader got through while the lock was held.
            reader_done.wait(timeout=20)

    writer = threading.Thread(target=write_and_hold)
    writer.start()
    assert writer_holds.wait(timeout=20)
    with store.read_session() as session:
        found = [case.id for case in session.execute(select(Case)).scalars()]
    finished_while_writer_held = writer.is_alive()
    reader_done.set()
    writer.join()
    assert finished_while_writer_held
    # The writer's row is not visible until it commits.
    assert "C-2026-0002" in found and "C-2026-0003" not in found
