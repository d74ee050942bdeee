"""Opening the ansim home for a command, importing the store and banks only then: a command's
`--help` must not pay for them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ansim.casework.listings import ListingStore
    from ansim.casework.workspace import Workspace
    from ansim.store.plain_sqlite import PlainHome


def open_workspace() -> Workspace:
    from ansim.pipeline.workspaces import open_workspace as open_home

    return open_home()


def open_plain_home() -> PlainHome | None:
    """The home through sqlite3 without SQLAlchemy (`store.plain_sqlite`), or None when it
    must be opened the full way (PostgreSQL; a store to migrate or key; a key problem)."""
    from ansim.settings import Settings
    from ansim.store.home import resolve_home
    from ansim.store.plain_sqlite import open_plain

    settings = Settings.from_environment()
    return open_plain(resolve_home(settings), settings.analyst)


@contextmanager
def open_listing() -> Iterator[ListingStore]:
    """One transaction for a command that only lists (`casework.listings`): through
    sqlite3 where the home allows it, which starts several times faster, else through the
    opened Workspace."""
    plain = open_plain_home()
    if plain is None:
        with open_workspace().listing() as store:
            yield store
        return
    try:
        with plain.transaction() as store:
            yield store
    finally:
        plain.close()
