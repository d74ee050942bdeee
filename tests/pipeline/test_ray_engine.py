"""`--engine ray`: the same findings as the local engine, on a local Ray (skipped without the
`cluster` extra)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ansim.casework import cases
from ansim.detector.hashing import HashOptions
from ansim.detector.image_robust import ROBUST_OPTION
from ansim.pipeline import crawl as crawling
from ansim.pipeline import intake, scanning
from ansim.pipeline.workers import WORKER_LOST
from ansim.pipeline.workspaces import init_workspace
from ansim.store.tables import CrawlUrl, Match, ScannedItem
from PIL import Image
from sqlalchemy import select

from tests.crawl_site import CrawlSite
from tests.helpers import photo_like
from tests.localserve import LocalServer
from tests.pipeline.test_workers import big_photo, malformed_tiff

ray = pytest.importorskip("ray")

PDQ_ONLY = HashOptions(extra={ROBUST_OPTION: False})
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # The actors inherit this environment: their replicas of the banks go under the test's
    # folder, not the user's ~/.cache.
    replicas = tmp_path_factory.mktemp("replicas")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANSIM_INDEX_CACHE_DIR", str(replicas))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_a_replica_folder_is_private_and_named_without_the_password(tmp_path: Path) -> None:
    from ansim.pipeline.ray_engine import replica_dir

    first = replica_dir(tmp_path, "postgresql+psycopg://ansim:secret@db.example:5432/ansim")
    again = replica_dir(tmp_path, "postgresql+psycopg://ansim:rotated@db.example:5432/ansim")
    other = replica_dir(tmp_path, "postgresql+psycopg://ansim:secret@db.example:5432/other")
    assert first == again != other
    assert first.parent == tmp_path and (first.stat().st_mode & 0o777) == 0o700
    # The actors' URL (no password at all) names the same folder as the driver's.
    assert replica_dir(tmp_path, "postgresql+psycopg://ansim@db.example:5432/ansim") == first


def test_a_crawls_calls_carry_the_store_url_without_its_password(tmp_path: Path) -> None:
    from ansim.pipeline.ray_engine import home_for_nodes
    from ansim.store.home import Home

    home = Home(tmp_path, "postgresql+psycopg://ansim:s3cret@db.example:5432/ansim")
    for_nodes = home_for_nodes(home)
    assert for_nodes.db_url == "postgresql+psycopg://ansim@db.example:5432/ansim"
    assert "s3cret" not in repr(for_nodes) and for_nodes.root == home.root
    sqlite_home = Home(tmp_path, f"sqlite:///{tmp_path / 'ansim.db'}")
    assert home_for_nodes(sqlite_home) == sqlite_home


def test_ray_scan_finds_what_the_local_scan_finds(
    local_ray: None, ansim_home: Path, tmp_path: Path
) -> None:
    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "other")
    (tmp_path / "refs").mkdir()
    refs = [photo_like(tmp_path / "refs" / f"r{i}.jpg", seed=60 + i) for i in range(2)]
    intake.add_reference_files(workspace, case_id, refs, PDQ_ONLY)
    dump = tmp_path / "dump"
    dump.mkdir()
    for i, ref in enumerate(refs):
        Image.open(ref).resize((280, 210)).save(dump / f"copy{i}.jpg", quality=75)
    photo_like(dump / "other.jpg", seed=70)
    malformed_tiff(dump / "fuzzed.tif")

    def findings(engine: str) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
        report = scanning.scan_paths(
            workspace, [dump], dry_run=True, options=PDQ_ONLY, workers=2, engine=engine
        )
        return (
            sorted((m.location, m.reference_id) for m in report.matches),
            sorted((f["path"], f["error"]) for f in report.failures),
        )

    local = findings("local")
    assert len(local[0]) == 2 and "TypeError" in local[1][0][1]
    assert findings("ray") == local


def test_a_file_that_cost_two_actors_is_given_up_alone(
    local_ray: None, ansim_home: Path, tmp_path: Path
) -> None:
    workspace, _ = init_workspace()
    dump = tmp_path / "dump"
    dump.mkdir()
    victim = big_photo(dump / "big.png")
    for i in range(4):
        photo_like(dump / f"p{i}.jpg", seed=80 + i)
    killed: list[Path] = []

    def kill_on_big(path: Path, actor: object) -> None:
        if path == victim:
            ray.kill(actor, no_restart=True)  # as a node going away would
            killed.append(path)

    report = scanning.scan_paths(
        workspace, [dump], options=PDQ_ONLY, workers=2, engine="ray", on_start=kill_on_big
    )
    assert killed == [victim, victim]  # tried again on another actor, once
    [failure] = report.failures
    assert failure["path"] == str(victim)
    assert failure["error"].startswith(f"{WORKER_LOST}: the Ray actors holding it were lost")
    assert report.scanned == 5  # the other four went on, on the replacement actor too


def crawl_findings(workspace, site) -> tuple[set[str], dict[str, tuple[str, str]]]:
    """What a crawl found: the matched URL paths, and each URL's state and outcome."""
    base = site.server.base_url
    with workspace.session() as session:
        rows = {
            row.url.removeprefix(base): (row.state, row.outcome)
            for row in session.scalars(select(CrawlUrl))
        }
        items = list(session.scalars(select(ScannedItem.location)))
    assert len(items) == len(set(items))  # nothing recorded twice
    with workspace.session() as session:
        matched = {
            url.removeprefix(base)
            for url in session.scalars(
                select(ScannedItem.location).join(Match, Match.item_id == ScannedItem.id)
            )
        }
    return matched, rows


def test_ray_crawl_finds_what_the_local_crawl_finds(
    local_ray: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = CrawlSite(tmp_path / "site", pages=6, per_page=2, planted=2)
    results = []
    with LocalServer(site.app) as server:
        site.server = server
        for engine in ("local", "ray"):
            monkeypatch.setenv("ANSIM_HOME", str(tmp_path / engine))
            workspace, _ = init_workspace()
            case_id = cases.open_case(workspace, "other")
            intake.add_reference_files(workspace, case_id, site.reference_files)
            options = crawling.CrawlOptions(
                seeds=[server.url("/p/0.html")],
                allow_loopback=True,
                min_delay_s=0.0,
                max_depth=10,
                hash_processes=1 if engine == "local" else 0,
                engine=engine,
            )
            crawling.run_crawl(workspace, options)
            results.append(crawl_findings(workspace, site))
            workspace.close()
    local, on_ray = results
    assert local[0] == set(site.planted_paths)
    assert on_ray == local


def test_an_actor_starting_deletes_the_bodies_dead_actors_left() -> None:
    from ansim.pipeline import ray_engine

    ray_engine._clear_dead_actors_bodies()
    assert oct(ray_engine.SCRATCH_DIR.stat().st_mode & 0o777) == "0o700"
    dead_pid = 2**22 + 1  # above Linux's largest pid: no such process
    left = ray_engine.SCRATCH_DIR / f"{dead_pid}-abc.jpg"
    left.write_bytes(b"a body an actor killed mid-item left behind")
    with ray_engine._body_file("photo.jpg", b"in use") as in_use:
        ray_engine._clear_dead_actors_bodies()
        assert in_use.read_bytes() == b"in use" and not left.exists()
    assert not in_use.exists()
