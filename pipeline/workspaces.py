"""Opening an ansim home as a Workspace with its signal banks (the reference bank and the
crawl history), which the pipeline owns and casework only uses through the Workspace."""

from __future__ import annotations

import os

from ansim.casework.workspace import NotInitialized, Workspace
from ansim.pipeline.banks import Banks
from ansim.settings import Settings
from ansim.store.crypto import Cipher, create_key_file
from ansim.store.db import Store
from ansim.store.home import Home, resolve_home


def init_workspace(
    home: Home | None = None, settings: Settings | None = None
) -> tuple[Workspace, bool]:
    """Create the home, key and schema if missing; returns (workspace, key_was_created).

    Without `settings`, they are read from the environment; without `home`, it is the
    settings' home."""
    settings = settings or Settings.from_environment()
    home = home or resolve_home(settings)
    home.root.mkdir(parents=True, exist_ok=True)
    os.chmod(home.root, 0o700)
    created_key = create_key_file(home.key_file)
    store = Store(home.db_url)
    store.migrate()
    return _workspace(home, store, settings), created_key


def open_workspace(home: Home | None = None, settings: Settings | None = None) -> Workspace:
    """The home (default: the settings' home) opened; settings default to the environment's."""
    settings = settings or Settings.from_environment()
    home = home or resolve_home(settings)
    if not home.root.exists() and home.db_url.startswith("sqlite"):
        raise NotInitialized(f"no ansim home at {home.root}: run `ansim init` first")
    store = Store(home.db_url)
    store.migrate()
    return _workspace(home, store, settings)


def _workspace(home: Home, store: Store, settings: Settings) -> Workspace:
    return Workspace(
        home=home,
        store=store,
        cipher=Cipher(home.key_file),
        banks=Banks(home.index_dir),
        history=Banks(home.index_dir, owner="item"),
        settings=settings,
    )
