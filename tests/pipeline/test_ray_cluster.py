"""A real two-node Ray cluster on this machine (`ray start --head` plus a second `ray start
--address`, one CPU each, token authentication on): a crawl and a scan through it find
what the local engine finds, and a crawl whose second node is killed mid-run loses
nothing and records nothing twice. Skipped without the `cluster` extra.

Each node keeps its replicas of the banks in its own folder (`ANSIM_INDEX_CACHE_DIR` in
the environment it was started with), as machines that share nothing but the store would:
with the store on PostgreSQL, a crawl still finds what the local engine finds.

The drivers run as `ansim` commands in their own processes, as an analyst would run them:
each process joins the cluster once, with the cluster's token in its environment."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansim.benchmarks.ray_cluster import ClusterStartFailed, LocalRayCluster
from ansim.casework import cases
from ansim.pipeline import crawl as crawling
from ansim.pipeline import intake
from ansim.pipeline.workspaces import init_workspace
from ansim.store.tables import CrawlUrl, Match, ScannedItem
from PIL import Image
from sqlalchemy import select
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL_ENV, REPO_ROOT
from tests.crawl_site import CrawlSite
from tests.helpers import photo_like
from tests.localserve import LocalServer

pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRayCluster]:
    # The nodes bring the PostgreSQL store's password themselves, as a deployment's would:
    # a crawl's calls carry the store's URL without it.
    password = make_url(os.environ[PG_URL_ENV]).password if os.environ.get(PG_URL_ENV) else None
    try:
        started = LocalRayCluster(nodes=2, env={"PGPASSWORD": password} if password else None)
    except ClusterStartFailed as exc:
        pytest.fail(str(exc))
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrawlSite]:
    generated = CrawlSite(tmp_path_factory.mktemp("site"), pages=6, per_page=2, planted=2)
    with LocalServer(generated.app) as server:
        generated.server = server
        yield generated


@pytest.fixture
def bigger_site(tmp_path: Path) -> Iterator[CrawlSite]:
    """Enough hashing for a node to die in the middle of it (about 50 calls to the actors)."""
    generated = CrawlSite(tmp_path / "site", pages=10, per_page=3, planted=2)
    with LocalServer(generated.app) as server:
        generated.server = server
        yield generated


def ansim(
    home: Path, cluster: LocalRayCluster, *args: str, wait: bool = True, db_url: str | None = None
) -> subprocess.Popen[bytes] | subprocess.CompletedProcess[bytes]:
    env = {**cluster.env, "ANSIM_HOME": str(home)}
    if db_url is not None:
        env["ANSIM_DB_URL"] = db_url
    command = [sys.executable, "-m", "cli", *args]
    if not wait:
        return subprocess.Popen(
            command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    return subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, timeout=600)


def home_with_references(
    root: Path,
    references: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    db_url: str | None = None,
) -> Path:
    monkeypatch.setenv("ANSIM_HOME", str(root))
    if db_url is None:
        monkeypatch.delenv("ANSIM_DB_URL", raising=False)
    else:
        monkeypatch.setenv("ANSIM_DB_URL", db_url)
    monkeypatch.delenv("ANSIM_KEY_FILE", raising=False)
    workspace, _ = init_workspace()
    intake.add_reference_files(workspace, cases.open_case(workspace, "other"), references)
    workspace.close()
    return root


def crawl_findings(
    home: Path, site: CrawlSite, db_url: str | None = None
) -> tuple[set[str], dict[str, tuple[str, str]]]:
    """The URL paths a crawl matched, and each URL's state and outcome; and that no
    location was recorded twice."""
    from ansim.store.db import Store

    store = Store(db_url or f"sqlite:///{home / 'ansim.db'}")
    base = site.server.base_url
    try:
        with store.read_session() as session:
            rows = {
                row.url.removeprefix(base): (row.state, row.outcome)
                for row in session.scalars(select(CrawlUrl))
            }
            items = list(session.scalars(select(ScannedItem.location)))
            matched = set(
                session.scalars(
                    select(ScannedItem.location).join(Match, Match.item_id == ScannedItem.id)
                )
            )
    finally:
        store.dispose()
    assert len(items) == len(set(items)), "a location was recorded twice"
    return {url.removeprefix(base) for url in matched}, rows


def local_crawl(tmp_path: Path, site: CrawlSite, monkeypatch: pytest.MonkeyPatch) -> tuple:
    home = home_with_references(tmp_path / "local", site.reference_files, monkeypatch)
    workspace, _ = init_workspace()
    options = crawling.CrawlOptions(
        seeds=[site.server.url("/p/0.html")],
        allow_loopback=True,
        min_delay_s=0.0,
        max_depth=10,
        hash_processes=1,
    )
    crawling.run_crawl(workspace, options)
    workspace.close()
    return crawl_findings(home, site)


def crawl_args(site: CrawlSite, cluster: LocalRayCluster) -> list[str]:
    return ["crawl", "run", "--seeds", site.server.url("/p/0.html"), "--allow-loopback"] + [
        "--delay", "0", "--max-depth", "10", "--engine", "ray", "--address", cluster.address,
        "--json",
    ]  # fmt: skip


def scan_folder(tmp_path: Path, references: list[Path]) -> Path:
    folder = tmp_path / "dump"
    folder.mkdir()
    for i, reference in enumerate(references):
        Image.open(reference).convert("RGB").resize((256, 192)).save(folder / f"copy{i}.jpg")
    for i in range(6):
        photo_like(folder / f"other{i}.jpg", seed=300 + i, size=(200, 150))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def scan_findings(result: subprocess.CompletedProcess[bytes]) -> tuple[list, list]:
    report = json.loads(result.stdout)
    return (
        sorted((Path(m["path"]).name, m["reference_id"]) for m in report["matches"]),
        sorted((Path(f["path"]).name, f["error"]) for f in report["failures"]),
    )


def test_a_crawl_and_a_scan_through_two_nodes_find_what_the_local_engine_finds(
    cluster: LocalRayCluster,
    site: CrawlSite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = local_crawl(tmp_path, site, monkeypatch)
    assert local[0] == set(site.planted_paths)
    home = home_with_references(tmp_path / "ray", site.reference_files, monkeypatch)
    result = ansim(home, cluster, *crawl_args(site, cluster))
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert crawl_findings(home, site) == local

    folder = scan_folder(tmp_path, site.reference_files)
    scans = [
        ansim(home, cluster, "scan", str(folder), "--dry-run", "--json", *engine)
        for engine in (["--workers", "1"], ["--engine", "ray", "--address", cluster.address])
    ]
    for scan in scans:
        assert scan.returncode in (0, 1), scan.stderr.decode()[-3000:]
    local_scan, ray_scan = (scan_findings(scan) for scan in scans)
    assert len(local_scan[0]) == 2 and [name for name, _ in local_scan[1]] == ["broken.jpg"]
    assert ray_scan == local_scan


def _items_recorded(home: Path) -> int:
    try:
        with sqlite3.connect(f"file:{home / 'ansim.db'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM scanned_item").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # not created yet


def test_a_node_killed_mid_crawl_loses_nothing_and_duplicates_nothing(
    cluster: LocalRayCluster,
    bigger_site: CrawlSite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = bigger_site
    if cluster.second is None:
        cluster.add_node()
    local = local_crawl(tmp_path, site, monkeypatch)
    home = home_with_references(tmp_path / "ray", site.reference_files, monkeypatch)
    crawl = ansim(home, cluster, *crawl_args(site, cluster), wait=False)
    # Mid-run: the actors are hashing (a first batch is recorded), most calls are to come.
    deadline = time.monotonic() + 300
    while _items_recorded(home) < 1:
        assert crawl.poll() is None, crawl.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert crawl.poll() is None  # still crawling as the node dies
    cluster.kill_node()
    stdout, stderr = crawl.communicate(timeout=600)
    assert crawl.returncode == 0, stderr.decode()[-3000:]
    # The cluster's news of the dead node goes to stderr: stdout is the JSON result alone.
    summary = json.loads(stdout)
    assert crawl_findings(home, site) == local  # every URL as the local engine has it
    assert "worker_lost" not in summary["outcomes"]
    # Whether the dead node's actor held calls at that instant is up to timing (in one
    # full-suite run it held none): the log's "a Ray actor was lost" line is not asserted.
    # What must hold either way is above: every URL as the local engine has it, once.


def test_a_node_killed_mid_scan_loses_nothing_and_duplicates_nothing(
    cluster: LocalRayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if cluster.second is None:
        cluster.add_node()
    references = [photo_like(tmp_path / f"ref{i}.png", seed=400 + i) for i in range(2)]
    folder = scan_folder(tmp_path, references)
    for i in range(16):  # enough files that most are still to hash when the node dies
        photo_like(folder / f"more{i}.jpg", seed=500 + i, size=(240, 180))
    local_home = home_with_references(tmp_path / "local", references, monkeypatch)
    local = ansim(local_home, cluster, "scan", str(folder), "--json", "--workers", "1")
    home = home_with_references(tmp_path / "ray", references, monkeypatch)
    scan = ansim(
        home, cluster, "scan", str(folder), "--json", "--engine", "ray", "--address",
        cluster.address, wait=False,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while _items_recorded(home) < 1:  # each file is recorded as it comes back
        assert scan.poll() is None, scan.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert scan.poll() is None  # still scanning as the node dies
    cluster.kill_node()
    stdout, stderr = scan.communicate(timeout=600)
    assert scan.returncode in (0, 1), stderr.decode()[-3000:]
    on_ray = scan_findings(subprocess.CompletedProcess([], scan.returncode, stdout, stderr))
    assert on_ray == scan_findings(local)
    assert len(on_ray[0]) == 2 and [name for name, _ in on_ray[1]] == ["broken.jpg"]
    assert _items_recorded(home) == len(list(folder.iterdir()))  # each file once


@pytest.fixture
def pg_url() -> Iterator[str]:
    from tests.conftest import PG_URL_ENV, _fresh_pg_database, _pg_admin_url

    admin_url = _pg_admin_url()
    if admin_url is None:
        pytest.skip(f"{PG_URL_ENV} is not set (run through scripts/pg-test-cluster)")
    yield from _fresh_pg_database(admin_url)


def test_nodes_match_against_their_own_replicas_of_a_postgresql_store(
    cluster: LocalRayCluster,
    site: CrawlSite,
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each node's actors build the reference banks from the store in that node's own
    folder (none of them opens the driver's home) and find what the local engine finds."""
    from ansim.pipeline.ray_engine import replica_dir

    if cluster.second is None:
        cluster.add_node()
    local = local_crawl(tmp_path, site, monkeypatch)
    home = home_with_references(tmp_path / "ray", site.reference_files, monkeypatch, pg_url)
    replicas = {node: folder / replica_dir(folder, pg_url).name
                for node, folder in cluster.index_cache.items()}  # fmt: skip
    for folder in replicas.values():
        shutil.rmtree(folder, ignore_errors=True)  # empty: this store never seen there
    # The driver's home has no reference banks: an actor that opened them there (the
    # shared folder of this one machine) would have to build them.
    for path in (home / "index").glob("reference-*"):
        path.unlink()
    result = ansim(home, cluster, *crawl_args(site, cluster), db_url=pg_url)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert crawl_findings(home, site, pg_url) == local, result.stderr.decode()[-3000:]
    assert not list((home / "index").glob("reference-*"))
    # Both nodes hashed (one actor each, a dozen files): each built its own replica.
    for node, folder in replicas.items():
        assert (folder / "reference-pdq.index").exists(), node
        assert (folder.stat().st_mode & 0o777) == 0o700
