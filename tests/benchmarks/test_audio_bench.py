"""`ansim bench audio` runs end to end on a tiny setup and reports what it measured."""

from __future__ import annotations

import shutil
from pathlib import Path

from ansim.benchmarks.audio import (
    BenchConfig,
    best_ber,
    filler_music,
    report_markdown,
    run_audio_bench,
)

from tests.audio_helpers import recording


def test_tiny_bench_run(tmp_path: Path, shared_data: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("sorohanro_-_solo-trumpet-06.hq.ogg", "3436-172162-0000.hq.ogg"):
        shutil.copy(recording(shared_data, name), data / name)
    config = BenchConfig(
        data=data,
        out=tmp_path / "out",
        held_out=("3436-172162-0000",),
        filler_minutes=0.5,
        clips_per_length=1,
        use_fpcalc=False,
        only_edits=("clean",),
    )
    result = run_audio_bench(config)
    assert result["indexed_recordings"] == ["sorohanro_-_solo-trumpet-06"]
    assert result["per_edit"]["clean"] == {
        "queries": 1,  # the trumpet is too short for a 10 s clip
        "recall": 1.0,
        "false_matches": 0,
        "fpcalc_recall": 0.0,
        "fpcalc_false_matches": 0,
        "fpcalc_failed": 0,
    }
    assert result["distractors"]["queries"] == 2 and result["distractors"]["false_matches"] == 0
    assert result["fingerprint_realtime_cpu"] > 0 and result["index_bytes_per_hour"] > 0
    assert "| clean | 1 | 1.000 |" in report_markdown(result, "ansim bench audio ...")


def test_filler_is_deterministic_and_fpcalc_ber_is_sane() -> None:
    a, b = filler_music(3.0, seed=1), filler_music(3.0, seed=1)
    assert (a == b).all() and a.std() > 0.01
    import numpy as np

    frames = np.random.default_rng(0).integers(0, 2**32, 200, dtype=np.uint64).astype(np.uint32)
    assert best_ber(frames[50:90], frames) == 0.0
    assert 0.3 < best_ber(frames[:40] ^ np.uint32(0xFFFF0000), frames) <= 0.6
