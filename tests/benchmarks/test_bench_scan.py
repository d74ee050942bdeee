"""`ansim bench scan` on a small folder: every row measured, same findings with 1 and 2 workers
and through Ray."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansim.benchmarks.scan_bench import run_scan_bench
from PIL import Image

from tests.helpers import photo_like

pytestmark = pytest.mark.timeout(600)


def test_bench_scan_runs_on_a_small_folder(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(6):
        photo_like(folder / f"p{i}.png", seed=90 + i)
    # Scanned as JPEG copies with a long side of 320 px (`--long-side`).
    result = run_scan_bench(folder, tmp_path / "out", limit=6, workers=2, long_side=320)
    assert result["images"] == 6 and result["same_findings"] is True
    copies = sorted((tmp_path / "out" / "photos-320px").iterdir())
    assert len(copies) == 6
    for copy in copies:
        with Image.open(copy) as image:
            assert image.format == "JPEG" and max(image.size) == 320
    rows = result["rows"]
    assert len(rows) == 4
    assert all(row["images_per_s"] > 0 for row in rows.values())
    scans = [row for label, row in rows.items() if label.startswith("ansim scan")]
    # The 5 references are among the scanned files: each is found, nothing fails.
    assert [row["matches"] for row in scans] == [5, 5]
    assert all(row["errors"] == 0 for row in scans)


def test_bench_scan_through_a_local_ray_cluster_finds_what_the_local_scans_find(
    tmp_path: Path,
) -> None:
    pytest.importorskip("ray")
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(6):
        photo_like(folder / f"p{i}.png", seed=90 + i)
    result = run_scan_bench(folder, tmp_path / "out", limit=6, workers=2, ray_nodes=2)
    assert result["same_findings"] is True  # 1 worker, 2 workers and Ray
    ray_row = next(row for label, row in result["rows"].items() if "--engine ray" in label)
    assert ray_row["matches"] == 5 and ray_row["errors"] == 0
    assert ray_row["cluster_cpu_s"] > 0 and ray_row["images_per_cpu_s"] > 0
