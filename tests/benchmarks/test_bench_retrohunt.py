"""`ansim bench retrohunt` on a small synthetic history: the new reference finds its PDQ
near copies and the items only its descriptor connects it to."""

from __future__ import annotations

from pathlib import Path

from ansim.benchmarks.retrohunt_bench import run_retrohunt_bench


def test_small_retrohunt_bench_finds_every_planted_copy(shared_data: Path, tmp_path: Path) -> None:
    result = run_retrohunt_bench(shared_data, tmp_path, items=20_000)

    assert result["planted_descriptor_only"] == 3
    assert result["planted_near_copies"] == 6  # 3 by PDQ, 3 by the descriptor only
    assert result["found"] == 6 and result["found_descriptor_only"] == 3
    assert result["unexpected"] == []
    assert result["second_hunt_matches"] == 6
    assert (tmp_path / "retrohunt-bench.json").exists()
