"""The audio landmark index: the fast inverted index agrees with its brute-force twin,
adds and withdraws incrementally, and survives a trip through its file; the packed file
answers as the earlier 12-byte layout did, and a streamed build writes the same file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr
from ansim.detector.audio import fingerprint_samples
from ansim.detector.audio_decode import TARGET_RATE
from ansim.detector.audio_landmarks import query_variants
from ansim.indexer.array_file import read_arrays, write_arrays
from ansim.indexer.audio_index import (
    DEFAULT_MAX_POSTINGS_PER_HASH,
    FILE_MAGIC,
    SORTED_FORMAT,
    SORTED_MAGIC,
    STREAM_HASH_BITS,
    AudioEntry,
    BruteForceAudioIndex,
    InvertedAudioIndex,
    QueryLandmarks,
    posting_layout,
    write_audio_bank,
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
    assert isinstance(opened._base.packed, np.memmap) and len(opened) == 3
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


def save_sorted_layout(index: InvertedAudioIndex, path: Path) -> None:
    """The bank in the format-2 layout (hash, entry id, time: 12 bytes a posting), written
    as that format's `save` wrote it."""
    hashes, entries, times = index._all_postings()
    ids = sorted(index.entry_ids())
    peaks = [index.peaks(i) for i in ids]
    arrays = {
        "hashes": hashes,
        "entries": entries,
        "times": times,
        "entry_ids": np.array(ids, dtype=np.uint32),
        "peak_bounds": np.concatenate([[0], np.cumsum([len(f) for f, _ in peaks])]).astype(
            np.int64
        ),
        "peak_frames": np.concatenate([f for f, _ in peaks]).astype(np.uint32),
        "peak_pitches": np.concatenate([p for _, p in peaks]).astype(np.float32),
    }
    meta = {"format": SORTED_FORMAT, "max_postings_per_hash": index.max_postings_per_hash}
    write_arrays(path, SORTED_MAGIC, meta, arrays)


# Hashes cut to this many bits crowd few keys: the packed file then keeps a start for
# every hash (no key table), as a large bank's does.
NARROW_BITS = 10


def narrowed(entries, query_set=None):
    """The entries (or queries) with their hashes mixed down to NARROW_BITS bits (a
    multiplicative hash: the detector's low bits are far from uniform)."""

    def cut(hashes: np.ndarray) -> np.ndarray:
        mixed = (hashes.astype(np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
        return (mixed >> np.uint64(32 - NARROW_BITS)).astype(np.uint32)

    if query_set is not None:
        return [[QueryLandmarks(cut(q.hashes), q.times) for q in query] for query in query_set]
    return {
        entry_id: (AudioEntry(cut(e.hashes), e.times, e.peak_frames, e.peak_pitches), mono)
        for entry_id, (e, mono) in entries.items()
    }


@pytest.mark.parametrize("narrow", [False, True], ids=["key table", "start per hash"])
@pytest.mark.parametrize("cap", [DEFAULT_MAX_POSTINGS_PER_HASH, 2])
def test_packed_file_answers_as_the_sorted_layout(
    entries, tmp_path: Path, cap: int, narrow: bool
) -> None:
    """The same bank in the earlier layout and in the packed one: the same answers to the
    same queries (and the twin's), a few bytes a posting instead of 12; a bank of the
    earlier layout opens, and its next save writes the packed one."""
    query_set = queries(entries, 6, seed=21)
    if narrow:
        entries, query_set = narrowed(entries), narrowed(entries, query_set)
    built = InvertedAudioIndex(cap)
    for entry_id, (entry, _) in entries.items():
        built.add(entry_id, entry)
    save_sorted_layout(built, tmp_path / "before.index")
    built.save(tmp_path / "after.index")
    before = InvertedAudioIndex.load(tmp_path / "before.index")
    after = InvertedAudioIndex.load(tmp_path / "after.index")
    twin = BruteForceAudioIndex(cap)
    for entry_id, (entry, _) in entries.items():
        twin.add(entry_id, entry)
    assert before.postings == after.postings == twin.postings
    strong = 0
    for query in query_set:
        answer = after.vote(query)
        assert answer == before.vote(query) == twin.vote(query)
        strong += bool(answer) and answer[0].votes > 20
    assert cap == 2 or strong >= 2  # real matches among them, not only chance hits
    for entry_id, (entry, _) in entries.items():
        for got, want in zip(
            after.peaks(entry_id), (entry.peak_frames, entry.peak_pitches), strict=True
        ):
            np.testing.assert_array_equal(got, want)
    meta, arrays = read_arrays(tmp_path / "after.index", FILE_MAGIC)
    max_time = max(int(np.rint(e.times).max()) for e, _ in entries.values())
    time_bits, width = posting_layout(len(entries), max_time)
    assert meta["time_bits"] == time_bits and arrays["postings"].shape == (built.postings, width)
    assert width < 12 and ("keys" in arrays) is not narrow
    assert len(arrays["starts"]) == (1 << NARROW_BITS) + 1 if narrow else len(arrays["keys"]) + 1
    before.save(tmp_path / "before.index")  # over the very file it maps
    resaved = InvertedAudioIndex.load(tmp_path / "before.index")
    assert (tmp_path / "before.index").read_bytes() == (tmp_path / "after.index").read_bytes()
    for query in query_set[:2]:
        assert resaved.vote(query) == twin.vote(query)


@pytest.mark.parametrize("narrow", [False, True], ids=["key table", "start per hash"])
@pytest.mark.parametrize("pass_postings", [1 << 27, 5000])
def test_streamed_build_writes_the_saved_file(
    entries, tmp_path: Path, pass_postings: int, narrow: bool
) -> None:
    """`write_audio_bank` (in one pass over the hashes, or in many) writes what `save`
    writes for the same entries, byte for byte."""
    if narrow:
        entries = narrowed(entries)
    built = InvertedAudioIndex()
    for entry_id, (entry, _) in entries.items():
        built.add(entry_id, entry)
    built.save(tmp_path / "saved.index")

    def stream():
        return ((entry_id, entry) for entry_id, (entry, _) in sorted(entries.items()))

    write_audio_bank(tmp_path / "streamed.index", stream, pass_postings=pass_postings)
    saved = (tmp_path / "saved.index").read_bytes()
    assert (tmp_path / "streamed.index").read_bytes() == saved


def test_streamed_build_refuses_what_it_cannot_hold(entries, tmp_path: Path) -> None:
    ordered = sorted(((i, e) for i, (e, _) in entries.items()), reverse=True)
    with pytest.raises(ValueError, match="ids must rise"):
        write_audio_bank(tmp_path / "a.index", lambda: iter(ordered))
    entry = ordered[0][1]
    wide = AudioEntry(
        entry.hashes | np.uint32(1 << STREAM_HASH_BITS),
        entry.times,
        entry.peak_frames,
        entry.peak_pitches,
    )
    with pytest.raises(ValueError, match="hashes below"):
        write_audio_bank(tmp_path / "a.index", lambda: iter([(1, wide)]))
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


def test_posting_layout_is_the_narrowest_that_holds_the_bank() -> None:
    # A row and a frame, each in as many bits as the bank's largest needs, in whole bytes.
    assert posting_layout(1, 0) == (1, 1)
    assert posting_layout(20_000, 5_624) == (13, 4)  # 15 + 13 bits
    assert posting_layout(200_000, 5_624) == (13, 4)  # 18 + 13 bits
    assert posting_layout(16_000_000, 6 * 3600 * 32) == (20, 6)  # 24 + 20 bits
    # The most `add` accepts (ids and frames below 2**32) still fits 64 bits; more would not.
    assert posting_layout(1 << 32, (1 << 32) - 1) == (32, 8)
    with pytest.raises(ValueError):
        posting_layout((1 << 32) + 1, (1 << 32) - 1)
