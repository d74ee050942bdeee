"""An existing database at the first schema upgrades to the newest one without losing rows,
through the store's own engine (on SQLite: with foreign keys enforced, as ansim opens it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from ansim.store.db import (
    alembic_config,
    head_revision,
    make_engine,
    normalize_url,
    schema_is_current,
    upgrade,
)
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

T = "2026-02-01 10:00:00+00:00"
SEED = [
    "INSERT INTO support_case (id, case_type, status, pseudonym, created_at) "
    f"VALUES ('C-2026-0001', 'digital-sex-crime', 'open', 'P1', '{T}')",
    "INSERT INTO reference (id, case_id, modality, origin, added_by, added_at, consent) "
    f"VALUES (1, 'C-2026-0001', 'image', 'file', 'kim', '{T}', 'given')",
    "INSERT INTO scanned_item (id, location, sha256, scanned_at) "
    f"VALUES (1, 'https://h.example/a.jpg', '{'a' * 64}', '{T}')",
    "INSERT INTO signal (id, reference_id, kind, value, quality) VALUES (1, 1, 'pdq', 'ff00', 90)",
    "INSERT INTO match (id, item_id, reference_id, signal, explanation, created_at) "
    f"VALUES (1, 1, 1, 'pdq', 'close', '{T}')",
    "INSERT INTO takedown (id, case_id, reference_id, item_id, match_id, location, host, status, "
    f"detected_at, updated_at) VALUES (1, 'C-2026-0001', 1, 1, 1, 'https://h.example/a.jpg', "
    f"'h.example', 'confirmed', '{T}', '{T}')",
    "INSERT INTO takedown_event (id, takedown_id, from_status, to_status, at, actor) "
    f"VALUES (1, 1, 'new', 'confirmed', '{T}', 'kim')",
]


def test_first_schema_upgrades_without_loss(db_url: str) -> None:
    url = normalize_url(db_url)
    config = alembic_config(url)
    command.upgrade(config, "0001")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for statement in SEED:
                connection.execute(text(statement))
        assert not schema_is_current(engine)
        upgrade(engine)
        assert schema_is_current(engine)
        with engine.begin() as connection:
            takedown = connection.execute(
                text("SELECT location, status, generation, reappearance_of FROM takedown")
            ).one()
            assert tuple(takedown) == ("https://h.example/a.jpg", "confirmed", 0, None)
            assert connection.execute(
                text("SELECT pseudonym, purged_at FROM support_case")
            ).one() == (
                "P1",
                None,
            )
            for table in ("signal", "match", "takedown_event", "scanned_item", "reference"):
                assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 1
        tables = set(inspect(engine).get_table_names())
        assert {"host", "notice", "notice_takedown", "recheck", "confirmation"} <= tables
        # Same location and case: allowed one generation up, refused in the same generation.
        reappeared = (
            "INSERT INTO takedown (id, case_id, reference_id, item_id, match_id, location, "
            "status, detected_at, updated_at, generation, reappearance_of) VALUES "
            f"({{id}}, 'C-2026-0001', 1, 1, 1, 'https://h.example/a.jpg', 'new', '{T}', '{T}', "
            "{generation}, 1)"
        )
        with engine.begin() as connection:
            connection.execute(text(reappeared.format(id=2, generation=1)))
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(text(reappeared.format(id=3, generation=1)))
    finally:
        engine.dispose()


def test_head_revision_read_from_the_files_is_alembics() -> None:
    from alembic.script import ScriptDirectory

    alembic_head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head_revision() == alembic_head


def test_a_store_stamped_at_another_revision_is_not_current(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert not schema_is_current(engine)  # no version table at all
        upgrade(engine)
        assert schema_is_current(engine)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0004_victim_data'"))
        assert not schema_is_current(engine)
    finally:
        engine.dispose()
