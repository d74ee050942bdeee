"""`ansim bench scale` at a small size: the MIH bank must agree with its exhaustive twin."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansim.benchmarks.scale import ScaleConfig, run_scale_benchmark
from ansim.detector.audio_landmarks import VariantGrid


def test_small_scale_run_is_exact(shared_data: Path, tmp_path: Path) -> None:
    config = ScaleConfig(
        out=tmp_path / "scale",
        images=shared_data / "images" / "kodak24",
        entries=[6000],
        history=[5000],
        descriptors=[25_000],
        text_references=[3000],
        audio_hours=[1.0],
        texts=shared_data / "text",
        audio_recordings=shared_data / "audio",
        photos=6,
    )
    report = run_scale_benchmark(config, lambda line: None)
    bank = report["banks"][0]
    assert bank["imported"] == 6000
    # 6 photos x 8 dihedral variants; each photo's copies at 4, 16, 28 bits are found.
    assert bank["lookups"] == 6 * 8 + 200
    assert bank["twin_hits"] >= 6 * 3
    assert bank["recall"] == 1.0 and bank["extra_hits"] == 0
    assert bank["index_file_bytes_per_entry"] == pytest.approx(40, abs=1)
    assert bank["add_one_s"] > 0 and bank["withdraw_one_s"] > 0
    # A delta segment (one entry: 34 + 40 bytes; one removal: 34 + 8) and the manifest.
    assert 74 < bank["add_one_bytes_written"] < 1024
    assert 42 < bank["withdraw_one_bytes_written"] < 1024
    history = report["history"][0]
    assert history["history_entries"] == 5000
    # A table file: ids and hashes (40 bytes), heads (16) and rows, mapped in a new process.
    assert history["file_bytes_per_entry"] > 56 and history["index_bytes_per_entry"] > 16
    assert history["lookups_per_s"] > 0 and history["video_one_step_lookup_ms"] > 0
    assert 0 < history["rss_file_mb"] <= history["rss_mb"] <= history["peak_rss_mb"]
    assert report["descriptors"][0]["candidate_recall"] >= 0.95  # held to 0.99 elsewhere
    # The text and audio banks open from their files and find their planted copies.
    text, audio = report["text"][0], report["audio"][0]
    assert text["text_references"] == 3000 + 200 and text["text_copies_found"] >= 0.97
    assert audio["audio_entries"] == 20 and audio["audio_clips_found"] == 1.0
    # A real 10-second clip's query: every variant of the grid, each with its landmarks.
    assert audio["audio_real_query_variants"] == len(VariantGrid().variants())
    assert audio["audio_real_query_lookups"] > 35 * 500 and audio["audio_real_query_hits"] > 0
    assert audio["audio_real_query_cpu_s"] > 0


def test_audio_bank_answers_inside_a_memory_limit(shared_data: Path, tmp_path: Path) -> None:
    """`--audio-memory-limit`: the bank opened and searched in a memory cgroup, its pages
    dropped from the cache first so that the step reads them from disk itself, every
    clip found. (How it fares with a file far larger than the limit: RESULTS.md.)"""
    from ansim.benchmarks.memory_limit import MemoryCgroup

    try:
        MemoryCgroup.create(1 << 30).remove()
    except ValueError as exc:
        pytest.skip(str(exc))
    config = ScaleConfig(
        out=tmp_path / "scale",
        images=shared_data / "images" / "kodak24",
        entries=[],
        audio_hours=[4.0],
        photos=1,
        audio_memory_limit=128 * 2**20,
    )
    audio = run_scale_benchmark(config, lambda line: None)["audio"][0]
    assert audio["audio_entries"] == 80 and audio["audio_clips_found"] == 1.0
    assert audio["memory_limit_mb"] == 128 and 0 < audio["cgroup_peak_mb"] <= 128
    assert audio["audio_major_faults"] > 0 and audio["audio_build_s"] > 0
