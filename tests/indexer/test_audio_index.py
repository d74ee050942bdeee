"""The audio landmark index: the fast inverted index agrees with its brute-force twin,
adds and withdraws incrementally, and survives a trip through its file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr
from ansim.detector.audio import fingerprint_samples
from ansim.detector.audio_decode import TARGET_RATE
from ansim.detector.audio_landmarks import query_variants
from ansim.indexer.audio_index import (
    DEFAULT_MAX_POSTINGS_PER_HASH,
    AudioEntry,
    BruteForceAudioIndex,
    InvertedAudioIndex,
    QueryLandmarks,
)
from ansim.indexer.persisted import PersistedIndex

from tests.audio_helpers import INDEXED, load_mono, recording


@pytest.fixture(scope="module")
def entries(shared_data: Path) -> dict[int, tuple[AudioEntry, np.ndarray]]:
    """Entry id -> (entry, mono samples at TARGET_RATE) for four short recordings."""
    out = {}
    for entry_id, name in zip((11, 22, 33, 44), INDEXED[1:3] + INDEXED[5:7], strict=True):
        samples, rate = load_mono(recording(shared_data, name))
        mono = soxr.resample(samples, rate, TARGET_RATE).astype(np.float32)[: 30 * TARGET_RATE]
        fingerprint = fingerprint_samples(mono)
        marks = fingerprint.landmarks()
        out[entry_id] = (
            AudioEntry(marks.hashes, marks.times, fingerprint.frames, fingerprint.pitches),
            mono,
        )
    return out


def queries(entries, count: int, seed: int) -> list[list[QueryLandmarks]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        _, mono = entries[int(rng.choice(list(entries)))]
        start = int(rng.integers(0, len(mono) - 3 * TARGET_RATE))
        clip = mono[start : start + 3 * TARGET_RATE] * float(rng.uniform(0.3, 1.0))
        clip = clip + rng.normal(0, 0.02, len(clip)).astype(np.float32)
        fingerprint = fingerprint_samples(clip)
        variants = query_variants(fingerprint.frames, fingerprint.pitches)
        # A handful of variants keeps the loop-based twin quick.
        out.append([QueryLandmarks(m.hashes, m.times) for _, m in variants[::7]])
    return out


def test_inverted_index_agrees_with_brute_force(entries) -> None:
    fast, slow = InvertedAudioIndex(), BruteForceAudioIndex()
    for entry_id, (entry, _) in entries.items():
        fast.add(entry_id, entry)
        slow.add(entry_id, entry)
    assert fast.postings == slow.postings and len(fast) == len(slow) == 4
    for query in queries(entries, 4, seed=2):
        assert fast.vote(query) == slow.vote(query)
        assert fast.vote(query)[0].votes > 20  # the clip's own recording, far ahead


def test_stop_word_cap_agrees(entries) -> None:
    fast, slow = InvertedAudioIndex(max_postings_per_hash=2), BruteForceAudioIndex(2)
    for entry_id, (entry, _) in entries.items():
        fast.add(entry_id, entry)
        slow.add(entry_id, entry)
    query = queries(entries, 1, seed=9)[0]
    assert fast.vote(query) == slow.vote(query)


def test_incremental_add_withdraw_and_persistence(entries, tmp_path: Path) -> None:
    persisted = PersistedIndex(
        tmp_path / "audio.index", InvertedAudioIndex.load, InvertedAudioIndex
    )
    ids = list(entries)
    with persisted.write() as index:
        for entry_id in ids[:2]:
            index.add(entry_id, entries[entry_id][0])
    with persisted.write() as index:
        for entry_id in ids[2:]:
            index.add(entry_id, entries[entry_id][0])
        with pytest.raises(ValueError):
            index.add(ids[0], entries[ids[0]][0])

    def reopened() -> InvertedAudioIndex:  # another process's view of the files
        return PersistedIndex(persisted.path, InvertedAudioIndex.load, InvertedAudioIndex).read()

    fresh = reopened()
    assert len(fresh) == 4 and fresh.entry_ids() == set(ids)
    np.testing.assert_array_equal(fresh.peaks(ids[1])[0], entries[ids[1]][0].peak_frames)
    query = queries(entries, 1, seed=4)[0]
    target = fresh.vote(query)[0].entry_id
    with persisted.write() as index:
        assert index.remove([target, 999]) == 1
    after = reopened()
    assert target not in after.entry_ids()
    assert all(vote.entry_id != target for vote in after.vote(query))
    # The twin, fed the same history, still agrees.
    twin = BruteForceAudioIndex()
    for entry_id in ids:
        if entry_id != target:
            twin.add(entry_id, entries[entry_id][0])
    assert after.vote(query) == twin.vote(query)


def test_memory_per_hour_is_bounded(entries) -> None:
    index = InvertedAudioIndex()
    seconds = 0.0
    for entry_id, (entry, mono) in entries.items():
        index.add(entry_id, entry)
        seconds += len(mono) / TARGET_RATE
    per_hour = index.nbytes / seconds * 3600
    assert per_hour < 16 * 2**20  # 12 bytes a landmark, ~300 landmarks a second at most


@pytest.mark.parametrize("cap", [DEFAULT_MAX_POSTINGS_PER_HASH, 2])
def test_opened_file_with_changes_since_agrees_with_brute_force(
    entries, tmp_path: Path, cap: int
) -> None:
    """An opened (memory-mapped) index, then a withdrawal, an add and a withdrawn id added
    back, votes as the twin does, the stop-word cap counted over live postings only; a
    save folds the changes into the file."""
    ids = list(entries)
    built = InvertedAudioIndex(cap)
    for entry_id in ids[:3]:
        built.add(entry_id, entries[entry_id][0])
    built.save(tmp_path / "audio.index")
    opened = InvertedAudioIndex.load(tmp_path / "audio.index")
    assert isinstance(opened._hashes, np.memmap) and len(opened) == 3
    twin = BruteForceAudioIndex(cap)
    for entry_id in ids[:3]:
        twin.add(entry_id, entries[entry_id][0])
    query_set = queries(entries, 3, seed=12)
    for index in (opened, twin):
        assert index.remove([ids[0], 999]) == 1
        index.add(ids[3], entries[ids[3]][0])
    assert ids[0] not in opened.entry_ids() and len(opened) == 3
    assert opened.postings == twin.postings
    for query in query_set:
        assert opened.vote(query) == twin.vote(query)
    for index in (opened, twin):
        index.add(ids[0], entries[ids[0]][0])
    np.testing.assert_array_equal(opened.peaks(ids[1])[0], entries[ids[1]][0].peak_frames)
    for query in query_set:
        assert opened.vote(query) == twin.vote(query)
    opened.remove([ids[2]])
    twin.remove([ids[2]])
    opened.save(tmp_path / "audio.index")  # over the very file it maps
    again = InvertedAudioIndex.load(tmp_path / "audio.index")
    assert again.entry_ids() == set(ids) - {ids[2]} and again.postings == twin.postings
    for query in query_set:
        assert again.vote(query) == twin.vote(query)
