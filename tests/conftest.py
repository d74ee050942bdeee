"""Shared fixtures: where the benign test media lives, and a throwaway ansim home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def hostile_site():
    """The hostile test site (tests/hostile_site.py) served on 127.0.0.1 for the session."""
    from crawler.localserve import LocalServer
    from tests.hostile_site import HostileSite

    site = HostileSite()
    with LocalServer(site.app) as server:
        site.server = server
        yield site
