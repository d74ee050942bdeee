"""Engine, sessions and migrations for SQLite (embedded default) or any SQLAlchemy URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ansim.store.plain_sqlite import SQLITE_BUSY_TIMEOUT_S, configure
from ansim.store.schema_version import MIGRATIONS_DIR, VERSION_TABLE, head_revision
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

READ_ONLY_OPTION = "ansim_read_only"


# For a PostgreSQL store run by a separate application role (migrations run by the owner):
# everything the application does, and no UPDATE or DELETE on the audit log. The 0004
# trigger refuses those for every role, the owner included; these grants refuse them even
# if the trigger were dropped (which only the owner can do). Apply with psql, after
# `ansim init` ran as the owner: psql -c "$(python -c 'from ansim.store.db import
# APPLICATION_GRANTS; print(APPLICATION_GRANTS.format(role="ansim_app"))')"
APPLICATION_GRANTS = (
    "GRANT USAGE ON SCHEMA public TO {role}; "
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}; "
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}; "
    "REVOKE UPDATE, DELETE, TRUNCATE ON audit FROM {role}"
)


def normalize_url(url: str) -> str:
    """Plain `postgresql://` URLs (as libpq and psql take them) go through psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # SQLAlchemy, not pysqlite, decides when transactions begin (see on_begin).
        configure(dbapi_connection)

    @event.listens_for(engine, "begin")
    def on_begin(connection):  # type: ignore[no-untyped-def]
        # IMMEDIATE takes the write lock up front: two writers queue instead of one of
        # them failing with "database is locked" when it upgrades a read to a write.
        # A read-only session (`Store.read_session`) takes no lock: in WAL mode readers
        # neither wait for the writer nor for each other.
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (no-op when it is there already)."""
    if schema_is_current(engine):
        return
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one, which a
            # referencing row (takedown_event -> takedown) forbids while foreign keys are
            # enforced. The pragma only works outside a transaction, hence the raw call.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                if sqlite:
                    _refuse_broken_references(connection)
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def _refuse_broken_references(connection: Connection) -> None:
    """Roll the migration back rather than commit rows whose references broke."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"migration would break references: {broken[:5]}")


def schema_is_current(engine: Engine) -> bool:
    """Whether the store is at the newest migration (read without importing Alembic)."""
    with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return False
        stamped = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    return [row.version_num for row in stamped] == [head_revision()]


class Store:
    """The database handle: `with store.session() as s:` is one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        # Handed to every session as Session.info (the audit key and the data cipher,
        # set by the workspace that opens the store).
        self.info: dict[str, object] = {}
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, info=self.info)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}),
            expire_on_commit=False,
            info=self.info,
        )

    def migrate(self) -> None:
        upgrade(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A transaction that only reads: on SQLite it does not queue behind writers
        (a crawl's hashing workers match against the store while the crawl writes)."""
        with self._read_sessions.begin() as session:
            yield session

    def flush_deleted(self) -> bool | None:
        """After a purge: on SQLite, copy the WAL into the database (whose deleted cells
        secure_delete zeroed) and truncate it, so no old page version keeps purged data.
        Returns False when another process's open transaction kept it from completing;
        None on PostgreSQL, which keeps dead row versions until VACUUM reclaims them."""
        if self.engine.dialect.name != "sqlite":
            return None
        self.engine.dispose()  # our own idle connections must not hold the WAL open
        with self.engine.connect() as connection:
            busy, _, _ = connection.connection.driver_connection.execute(
                "PRAGMA wal_checkpoint(TRUNCATE)"
            ).fetchone()
        return busy == 0

    def dispose(self) -> None:
        self.engine.dispose()
