"""`ansim bench crawl` on a small site of the same make: it runs end to end, finds its
planted copies without false matches, and its CPU figures add up."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansim.benchmarks.crawl_bench import run_crawl_bench


def test_small_crawl_bench_finds_every_planted_copy(shared_data: Path, tmp_path: Path) -> None:
    # 20 pages hold 100 media: every planted copy and the other media are linked.
    result = run_crawl_bench(shared_data, tmp_path / "bench", workers=8, pages=20)

    assert result["pages_crawled"] == 21  # the index page and its 20 pages
    assert result["media_fetched"] == 100
    assert result["planted_found"] == result["planted"] > 0
    assert result["unexpected_matches"] == []
    assert (tmp_path / "bench" / "crawl-bench.json").exists()
    cpu = [result[k] for k in ("crawler_cpu_s", "hash_workers_cpu_s", "site_server_cpu_s")]
    assert all(seconds > 0 for seconds in cpu)
    # Each figure is rounded to 0.1 s on its own.
    assert abs(result["cpu_bound_floor_s"] - sum(cpu) / result["cpu_count"]) <= 0.2
    # The history's image banks hold at least a PDQ hash (32 B) and an int8 descriptor
    # (128 B) per image, counted over each bank's manifest and the segments it names.
    assert result["history_bytes_per_image"]["image_index_files"] >= 160


def test_the_crawl_bench_on_a_local_two_node_ray_cluster_finds_every_planted_copy(
    shared_data: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    result = run_crawl_bench(
        shared_data, tmp_path / "bench", workers=8, pages=20, engine="ray", ray_nodes=2
    )

    assert (result["engine"], result["ray_local_nodes"]) == ("ray", 2)
    assert result["media_fetched"] == 100
    assert result["planted_found"] == result["planted"] > 0
    assert result["unexpected_matches"] == []
    assert "worker_lost" not in result["outcomes"]
    # The actors hash on the cluster's nodes: their CPU is counted there.
    assert result["ray_cluster_cpu_s"] > result["site_server_cpu_s"] > 0
