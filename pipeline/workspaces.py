"""Opening an ansim home as a Workspace with its signal banks (the reference bank and the
crawl history), which the pipeline owns and casework only uses through the Workspace.

Opening checks the data key against the check value the store keeps (a different key is
refused, never silently replaced) and loads the audit key into every session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ansim.casework.workspace import NotInitialized, Workspace
from ansim.settings import Settings
from ansim.store import audit
from ansim.store.crypto import Cipher, KeyProblem, create_key_file, create_secret_file
from ansim.store.db import Store
from ansim.store.home import Home, resolve_home
from ansim.store.plain_sqlite import KEY_CHECK
from ansim.store.tables import AuditHead, StoreSetting

if TYPE_CHECKING:
    from ansim.pipeline.banks import Banks

KEY_INSIDE_HOME_WARNING = (
    "the encryption key is inside the home ({key}): a copy of the home decrypts every "
    "contact; keep it elsewhere and point ANSIM_KEY_FILE at it"
)


def init_workspace(
    home: Home | None = None, settings: Settings | None = None
) -> tuple[Workspace, bool]:
    """Create the home, key and schema if missing; returns (workspace, key_was_created).

    Without `settings`, they are read from the environment; without `home`, it is the
    settings' home. A store that already holds data encrypted with some key never gets a
    new one: a missing key file is then an error (restore it or set ANSIM_KEY_FILE)."""
    settings = settings or Settings.from_environment()
    home = home or resolve_home(settings)
    home.root.mkdir(parents=True, exist_ok=True)
    os.chmod(home.root, 0o700)
    store = Store(home.db_url)
    store.migrate()
    with store.session() as session:
        has_check = session.get(StoreSetting, KEY_CHECK) is not None
    created_key = False if has_check else create_key_file(home.key_file)
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


def key_warnings(home: Home) -> list[str]:
    return [KEY_INSIDE_HOME_WARNING.format(key=home.key_file)] if home.key_file_inside_home else []


def check_data_key(store: Store, cipher: Cipher) -> None:
    """Refuse a key that is not the one the store's data was encrypted with; remember the
    key's check value the first time (new store, or one from before check values)."""
    values = cipher.check_values()
    with store.session() as session:
        stored = session.get(StoreSetting, KEY_CHECK, with_for_update=True)
        if stored is None:
            session.add(StoreSetting(name=KEY_CHECK, value=values[0]))
        elif stored.value not in values:
            raise KeyProblem(
                f"the key at {cipher.key_file} is not the key this store's data was encrypted "
                "with (its check value differs); restore the right key file or point "
                "ANSIM_KEY_FILE at it"
            )


def _audit_key(home: Home, store: Store) -> bytes:
    """The audit chain's HMAC key; created only while no keyed entry exists."""
    path = home.audit_key_file
    if not path.exists():
        with store.session() as session:
            head = session.get(AuditHead, 1)
            keyed_entries = head is not None and head.seq > audit.unkeyed_until(session)
        if keyed_entries:
            raise KeyProblem(
                f"audit key not found at {path} while keyed audit entries exist; restore it "
                "or point ANSIM_AUDIT_KEY_FILE at it"
            )
        create_secret_file(path)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError as exc:
        raise KeyProblem(f"audit key at {path} is malformed") from exc
    if len(key) < 32:
        raise KeyProblem(f"audit key at {path} is too short")
    return key


class LazyBanks:
    """A home's banks per owner, built on first use: `pipeline.banks` imports every signal
    type with its detector and index, which commands that match nothing never need."""

    def __init__(self, index_dir: Path) -> None:
        self._index_dir = index_dir
        self._opened: dict[str, Banks] = {}

    def __call__(self, owner: str) -> Banks:
        if owner not in self._opened:
            from ansim.pipeline.banks import Banks

            self._opened[owner] = Banks(self._index_dir, owner=owner)
        return self._opened[owner]


def _workspace(home: Home, store: Store, settings: Settings) -> Workspace:
    cipher = Cipher(home.key_file)
    check_data_key(store, cipher)
    audit_key = _audit_key(home, store)
    store.info[audit.AUDIT_KEY_INFO] = audit_key
    store.info[audit.CIPHER_INFO] = cipher
    return Workspace(
        home=home,
        store=store,
        cipher=cipher,
        open_banks=LazyBanks(home.index_dir),
        settings=settings,
        audit_key=audit_key,
    )
