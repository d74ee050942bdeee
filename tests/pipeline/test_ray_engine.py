"""`--engine ray`: the same findings as the local engine, on a local Ray (skipped without the
`cluster` extra)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ansim.casework import cases
from ansim.detector.hashing import HashOptions
from ansim.detector.image_robust import ROBUST_OPTION
from ansim.pipeline import intake, scanning
from ansim.pipeline.workers import WORKER_LOST
from ansim.pipeline.workspaces import init_workspace
from PIL import Image

from tests.helpers import photo_like
from tests.pipeline.test_workers import big_photo, malformed_tiff

ray = pytest.importorskip("ray")

PDQ_ONLY = HashOptions(extra={ROBUST_OPTION: False})
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


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


def test_an_actor_lost_mid_file_loses_that_file_alone(
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
    assert killed == [victim]
    [failure] = report.failures
    assert failure["path"] == str(victim)
    assert failure["error"].startswith(f"{WORKER_LOST}: the Ray actor holding it was lost")
    assert report.scanned == 5  # the other four went on, on the replacement actor too
