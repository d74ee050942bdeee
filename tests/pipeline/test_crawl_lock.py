"""One crawl per store: on SQLite a flock on the home's `crawl.lock`; on PostgreSQL an
advisory lock in the database, so a crawl started from a second machine (another home on
the same database) is refused too."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import Workspace
from ansim.pipeline import crawl as crawling
from ansim.pipeline.workspaces import open_workspace


def second_machine(workspace: Workspace, tmp_path: Path) -> Workspace:
    """The same store opened from another home, as a second machine of the center would."""
    home = workspace.home
    return open_workspace(
        dataclasses.replace(
            home,
            root=tmp_path / "machine-2",
            key_path=home.key_file,
            audit_key_path=home.audit_key_file,
        )
    )


def test_a_second_crawl_of_one_store_is_refused_with_who_holds_it(
    backend_workspace: Workspace, tmp_path: Path
) -> None:
    options = crawling.CrawlOptions(seeds=["http://127.0.0.1:9/"], allow_loopback=True)
    postgresql = backend_workspace.store.engine.dialect.name == "postgresql"
    with crawling.crawl_lock(backend_workspace):
        with pytest.raises(CaseworkError) as refused:
            crawling.run_crawl(backend_workspace, options)
        if postgresql:
            assert not (backend_workspace.home.root / "crawl.lock").exists()  # not a flock
            assert str(refused.value).startswith(
                "another crawl is running on this database (database connection pid "
            )
            assert str(refused.value).endswith("; PostgreSQL advisory lock)")
            other = second_machine(backend_workspace, tmp_path)
            try:
                with pytest.raises(CaseworkError, match="another crawl is running"):
                    crawling.run_crawl(other, options)
            finally:
                other.close()
        else:
            assert (
                str(refused.value) == f"another crawl is running on this home (pid {os.getpid()})"
            )
    # Released with the first crawl: the next one takes it.
    with crawling.crawl_lock(backend_workspace):
        pass
