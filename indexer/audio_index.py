"""Audio landmark index: hash -> (entry id, time) postings, and offset voting.

A query brings one landmark set per assumed (time scale, pitch shift) variant. Every
posting that shares a hash with a query landmark is a hit; a hit proposes an alignment
offset (reference time - query time). Hits of a true copy pile up on one offset for one
variant; chance hits scatter. `vote` reports, per entry, the best-supported
(variant, offset) with the number of distinct query landmarks behind it and the time
ranges they span.

`InvertedAudioIndex` keeps postings sorted by hash (binary search, vectorised), in a
file that is memory-mapped on open; adds go to a tail sorted on its own, withdrawn
entries are filtered out of the answers until the next save drops them.
`BruteForceAudioIndex` keeps each entry's landmarks apart and votes with plain loops:
obviously right and slow, the twin the fast one is tested against.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ansim.indexer.array_file import has_magic, read_arrays, write_arrays

# Offsets are binned in frames; each hit is counted in its bin and in the half-shifted
# bin grid, so an alignment that straddles a bin boundary is not split in two.
OFFSET_BIN = 4
MAX_CANDIDATES = 10
# Landmarks of one query hash that occur more often than this in the bank are stop
# words (silence edges, steady hums): they carry no identity and would flood the vote.
DEFAULT_MAX_POSTINGS_PER_HASH = 20_000
INDEX_FORMAT = 2
NPZ_FORMAT = 1  # the earlier .npz layout, still read
FILE_MAGIC = b"ANSIM-AUDIO-IX2\n"


@dataclass(frozen=True)
class QueryLandmarks:
    """One variant's landmarks: hashes and anchor times (frames, in reference time)."""

    hashes: np.ndarray
    times: np.ndarray


@dataclass(frozen=True)
class AudioEntry:
    """One fingerprint as the index keeps it: its landmarks, and its peaks for verification."""

    hashes: np.ndarray  # uint32 landmark hashes
    times: np.ndarray  # landmark anchor frames
    peak_frames: np.ndarray  # uint32
    peak_pitches: np.ndarray  # float32 pitch steps


@dataclass(frozen=True)
class OffsetVote:
    entry_id: int
    variant: int  # index into the query's variant list
    offset: float  # reference frame - query frame (reference time scale), bin centre
    votes: int  # distinct query landmarks agreeing on this alignment
    distinct_hashes: int
    query_start: float  # frames, in reference time scale
    query_end: float
    ref_start: float
    ref_end: float


class AudioIndex(ABC):
    """Entries are (entry_id, AudioEntry); ids are the store's signal row ids."""

    @abstractmethod
    def add(self, entry_id: int, entry: AudioEntry) -> None: ...

    @abstractmethod
    def peaks(self, entry_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(frames, pitches) of an entry's peaks, for verifying a candidate alignment."""

    @abstractmethod
    def remove(self, entry_ids: Sequence[int]) -> int: ...

    @abstractmethod
    def vote(self, variants: Sequence[QueryLandmarks]) -> list[OffsetVote]: ...

    @abstractmethod
    def __len__(self) -> int:
        """Number of entries (fingerprints)."""

    @property
    @abstractmethod
    def postings(self) -> int: ...


def _bin_keys(offsets: np.ndarray, shifted: bool) -> np.ndarray:
    return np.floor(offsets / OFFSET_BIN + (0.5 if shifted else 0.0)).astype(np.int64)


def _bin_centre(key: int, shifted: bool) -> float:
    return (key + (0.0 if shifted else 0.5)) * OFFSET_BIN


class InvertedAudioIndex(AudioIndex):
    """Postings sorted by hash in three parallel arrays (12 bytes a landmark).

    A saved index is memory-mapped on open, not read: a 10,000-hour bank is ~90 GB of
    sorted postings, of which a query reads the runs of its own hashes. Entries added
    since sit in a tail of their own (sorted when searched); withdrawn ones are filtered
    out of the answers, and both are folded into the file at the next save.
    """

    def __init__(self, max_postings_per_hash: int = DEFAULT_MAX_POSTINGS_PER_HASH) -> None:
        self.max_postings_per_hash = max_postings_per_hash
        self._hashes = np.zeros(0, dtype=np.uint32)
        self._entries = np.zeros(0, dtype=np.uint32)
        self._times = np.zeros(0, dtype=np.uint32)
        self._tail: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._sorted_tail: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._peaks: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # entries added here
        # Entries of the opened file: ids sorted, their peaks one after another.
        self._file_ids = np.zeros(0, dtype=np.uint32)
        self._file_alive = np.zeros(0, dtype=np.bool_)
        self._file_live = 0
        self._peak_bounds = np.zeros(1, dtype=np.int64)
        self._peak_frames = np.zeros(0, dtype=np.uint32)
        self._peak_pitches = np.zeros(0, dtype=np.float32)
        self._withdrawn: set[int] = set()  # ids whose postings are still in the arrays

    def _file_row(self, entry_id: int) -> int | None:
        row = int(np.searchsorted(self._file_ids, entry_id))
        if row < len(self._file_ids) and self._file_ids[row] == entry_id:
            return row if self._file_alive[row] else None
        return None

    def __contains__(self, entry_id: int) -> bool:
        return entry_id in self._peaks or self._file_row(entry_id) is not None

    def add(self, entry_id: int, entry: AudioEntry) -> None:
        if entry_id in self:
            raise ValueError(f"entry {entry_id} is already in the audio index")
        if not 0 <= entry_id < 1 << 32:
            raise ValueError(f"entry id {entry_id} does not fit the index")
        if entry_id in self._withdrawn:  # its old postings must go before new ones come
            self._compact()
        self._peaks[entry_id] = (
            np.asarray(entry.peak_frames, dtype=np.uint32),
            np.asarray(entry.peak_pitches, dtype=np.float32),
        )
        self._tail.append(
            (
                np.asarray(entry.hashes, dtype=np.uint32),
                np.full(len(entry.hashes), entry_id, dtype=np.uint32),
                np.asarray(np.rint(entry.times), dtype=np.uint32),
            )
        )
        self._sorted_tail = None

    def peaks(self, entry_id: int) -> tuple[np.ndarray, np.ndarray]:
        if entry_id in self._peaks:
            return self._peaks[entry_id]
        row = self._file_row(entry_id)
        if row is None:
            raise KeyError(entry_id)
        start, end = self._peak_bounds[row], self._peak_bounds[row + 1]
        return self._peak_frames[start:end], self._peak_pitches[start:end]

    def _tail_postings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._sorted_tail is None:
            parts = self._tail
            hashes = _concat([t[0] for t in parts], np.uint32)
            order = np.argsort(hashes, kind="stable")
            self._sorted_tail = (
                hashes[order],
                _concat([t[1] for t in parts], np.uint32)[order],
                _concat([t[2] for t in parts], np.uint32)[order],
            )
        return self._sorted_tail

    def _all_postings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every live posting, sorted by hash (the file's before the tail's on a tie)."""
        tail = self._tail_postings()
        hashes = np.concatenate([self._hashes, tail[0]])
        order = np.argsort(hashes, kind="stable")
        entries = np.concatenate([self._entries, tail[1]])[order]
        times = np.concatenate([self._times, tail[2]])[order]
        hashes = hashes[order]
        if self._withdrawn:
            keep = ~np.isin(entries, np.fromiter(self._withdrawn, dtype=np.uint32))
            hashes, entries, times = hashes[keep], entries[keep], times[keep]
        return hashes, entries, times

    def _compact(self) -> None:
        """Everything into memory arrays, withdrawn postings dropped (before a re-add)."""
        self._hashes, self._entries, self._times = self._all_postings()
        for entry_id in self._file_ids[self._file_alive].tolist():
            frames, pitches = self.peaks(entry_id)
            self._peaks[entry_id] = (np.array(frames), np.array(pitches))
        self._file_ids = np.zeros(0, dtype=np.uint32)
        self._file_alive = np.zeros(0, dtype=np.bool_)
        self._file_live = 0
        self._tail, self._sorted_tail, self._withdrawn = [], None, set()

    def remove(self, entry_ids: Sequence[int]) -> int:
        removed = 0
        for entry_id in set(entry_ids):
            if entry_id in self._peaks:
                del self._peaks[entry_id]
            elif (row := self._file_row(entry_id)) is not None:
                self._file_alive[row] = False
                self._file_live -= 1
            else:
                continue
            self._withdrawn.add(entry_id)
            removed += 1
        return removed

    def __len__(self) -> int:
        return len(self._peaks) + self._file_live

    @property
    def postings(self) -> int:
        if self._withdrawn:
            return len(self._all_postings()[0])
        return len(self._hashes) + sum(len(t[0]) for t in self._tail)

    @property
    def nbytes(self) -> int:
        postings = sum(a.nbytes for a in self._all_postings())
        peaks = sum(f.nbytes + p.nbytes for f, p in self._peaks.values())
        live = self._file_ids[self._file_alive]
        return postings + peaks + sum(self.peaks(i)[0].nbytes * 2 for i in live.tolist())

    def entry_ids(self) -> set[int]:
        return set(self._peaks) | set(self._file_ids[self._file_alive].tolist())

    def hits(self, query: QueryLandmarks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query landmark index, entry id, reference time) of every posting matching."""
        hashes = np.asarray(query.hashes, dtype=np.uint32)
        runs = []
        for sorted_hashes, entries, times in ((self._hashes, self._entries, self._times),
                                              self._tail_postings()):  # fmt: skip
            starts = np.searchsorted(sorted_hashes, hashes, side="left")
            ends = np.searchsorted(sorted_hashes, hashes, side="right")
            runs.append((starts, ends - starts, entries, times))
        counts = runs[0][1] + runs[1][1]
        # Over the cap: a stop word. With withdrawn entries still in the arrays, the cap
        # is applied to the live postings only (read them first).
        wanted = counts <= self.max_postings_per_hash
        if self._withdrawn:
            wanted[:] = True
        found = [_run_postings(starts, count * wanted, entries, times)
                 for starts, count, entries, times in runs]  # fmt: skip
        landmark = np.concatenate([f[0] for f in found])
        entries = np.concatenate([f[1] for f in found])
        times = np.concatenate([f[2] for f in found])
        if self._withdrawn:
            live = ~np.isin(entries, np.fromiter(self._withdrawn, dtype=np.int64))
            landmark, entries, times = landmark[live], entries[live], times[live]
            live_counts = np.bincount(landmark, minlength=len(hashes))
            capped = live_counts[landmark] <= self.max_postings_per_hash
            landmark, entries, times = landmark[capped], entries[capped], times[capped]
        # The file's postings, then the tail's, per landmark: as one sorted array holds them.
        order = np.argsort(landmark, kind="stable")
        return landmark[order], entries[order], times[order]

    def vote(self, variants: Sequence[QueryLandmarks]) -> list[OffsetVote]:
        parts = [self.hits(query) for query in variants]
        counts = [len(p[0]) for p in parts]
        if not sum(counts):
            return []
        variant = np.repeat(np.arange(len(variants)), counts)
        # Landmark numbers made unique across variants.
        landmark_base = np.cumsum([0] + [len(q.hashes) for q in variants])
        landmark = np.concatenate([p[0] + landmark_base[i] for i, p in enumerate(parts)])
        entries = np.concatenate([p[1] for p in parts])
        ref_times = np.concatenate([p[2] for p in parts])
        query_times = np.concatenate([np.asarray(q.times, dtype=np.float64) for q in variants])
        all_hashes = np.concatenate([np.asarray(q.hashes, dtype=np.uint32) for q in variants])
        offsets = ref_times - query_times[landmark]
        entry_values, entry_rank = _group(entries)
        candidates = []
        for shifted in (False, True):
            bins = _bin_keys(offsets, shifted)
            low = int(bins.min())
            bin_span = int(bins.max()) - low + 1
            pair_key = (variant * len(entry_values) + entry_rank) * bin_span + (bins - low)
            pairs, hit_pair = _group(pair_key)
            # One vote per (alignment, query landmark): a landmark hitting a repeated
            # passage twice within one bin still counts once.
            distinct = _distinct(hit_pair * len(query_times) + landmark)
            votes = np.bincount(distinct // len(query_times), minlength=len(pairs))
            pair_variant = pairs // bin_span // len(entry_values)
            pair_entry = entry_values[(pairs // bin_span) % len(entry_values)]
            centre = (pairs % bin_span + low + (0.0 if shifted else 0.5)) * OFFSET_BIN
            candidates.append((votes, pair_variant, centre, pair_entry, hit_pair, shifted))
        votes = np.concatenate([c[0] for c in candidates])
        pair_variant = np.concatenate([c[1] for c in candidates])
        centre = np.concatenate([c[2] for c in candidates])
        pair_entry = np.concatenate([c[3] for c in candidates])
        grid = np.concatenate([np.full(len(c[0]), g) for g, c in enumerate(candidates)])
        local = np.concatenate([np.arange(len(c[0])) for c in candidates])
        # Best alignment per entry: most votes, then earliest variant, then lowest offset.
        order = np.lexsort((centre, pair_variant, -votes, pair_entry))
        first = np.ones(len(order), dtype=bool)
        first[1:] = pair_entry[order[1:]] != pair_entry[order[:-1]]
        winners = order[first]
        winners = winners[
            np.lexsort(
                (pair_entry[winners], centre[winners], pair_variant[winners], -votes[winners])
            )
        ][:MAX_CANDIDATES]
        out = []
        for w in winners:
            members = candidates[grid[w]][4] == local[w]
            member_query_times = query_times[landmark[members]]
            out.append(
                OffsetVote(
                    entry_id=int(pair_entry[w]),
                    variant=int(pair_variant[w]),
                    offset=float(centre[w]),
                    votes=int(votes[w]),
                    distinct_hashes=len(_distinct(all_hashes[landmark[members]])),
                    query_start=float(member_query_times.min()),
                    query_end=float(member_query_times.max()),
                    ref_start=float(ref_times[members].min()),
                    ref_end=float(ref_times[members].max()),
                )
            )
        return out

    def save(self, path: Path) -> None:
        """Every live posting and entry, in the memory-mappable layout (array_file)."""
        hashes, entries, times = self._all_postings()
        ids = sorted(self.entry_ids())
        peaks = [self.peaks(i) for i in ids]
        arrays = {
            "hashes": hashes,
            "entries": entries,
            "times": times,
            "entry_ids": np.array(ids, dtype=np.uint32),
            "peak_bounds": np.concatenate([[0], np.cumsum([len(f) for f, _ in peaks])]).astype(
                np.int64
            ),
            "peak_frames": _concat([f for f, _ in peaks], np.uint32),
            "peak_pitches": _concat([p for _, p in peaks], np.float32),
        }
        meta = {"format": INDEX_FORMAT, "max_postings_per_hash": self.max_postings_per_hash}
        write_arrays(path, FILE_MAGIC, meta, arrays)

    @classmethod
    def load(cls, path: Path) -> InvertedAudioIndex:
        if not has_magic(path, FILE_MAGIC):
            return cls._load_npz(path)
        meta, arrays = read_arrays(path, FILE_MAGIC)
        if meta.get("format") != INDEX_FORMAT:
            raise ValueError(f"{path}: unknown audio index format; rebuild the index")
        index = cls(int(meta["max_postings_per_hash"]))
        index._hashes, index._entries = arrays["hashes"], arrays["entries"]
        index._times = arrays["times"]
        index._file_ids = arrays["entry_ids"]
        index._file_alive = np.ones(len(index._file_ids), dtype=np.bool_)
        index._file_live = len(index._file_ids)
        index._peak_bounds = arrays["peak_bounds"]
        index._peak_frames, index._peak_pitches = arrays["peak_frames"], arrays["peak_pitches"]
        return index

    @classmethod
    def _load_npz(cls, path: Path) -> InvertedAudioIndex:
        """A file of the earlier layout (an .npz, read whole); the next save rewrites it."""
        with np.load(io.BytesIO(path.read_bytes())) as data:
            if int(data["format"][0]) != NPZ_FORMAT:
                raise ValueError(f"{path}: unknown audio index format; rebuild the index")
            index = cls(int(data["max_postings_per_hash"][0]))
            index._hashes = data["hashes"]
            index._entries = data["entries"]
            index._times = data["times"]
            bounds = np.concatenate([[0], np.cumsum(data["peak_counts"])])
            frames, pitches = data["peak_frames"], data["peak_pitches"]
            for k, entry_id in enumerate(data["entry_ids"].tolist()):
                index._peaks[entry_id] = (
                    frames[bounds[k] : bounds[k + 1]],
                    pitches[bounds[k] : bounds[k + 1]],
                )
        return index


def _run_postings(
    starts: np.ndarray, counts: np.ndarray, entries: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(landmark, entry, time) of positions starts[i]..starts[i]+counts[i]-1, every i."""
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    landmark = np.repeat(np.arange(len(starts)), counts)
    # Positions start..end-1 of each run, without a Python loop.
    run_starts = np.repeat(starts - np.cumsum(counts) + counts, counts)
    positions = run_starts + np.arange(total)
    return landmark, entries[positions].astype(np.int64), times[positions].astype(np.int64)


def _concat(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype=dtype)


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: faster here than numpy's hashing unique)."""
    ordered = np.sort(values)
    if not len(ordered):
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _group(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each input value among them)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    inverse = np.empty(len(values), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def _better(a: OffsetVote, b: OffsetVote) -> bool:
    """Higher votes win; ties go to the earlier variant, then the lower offset."""
    return (a.votes, -a.variant, -a.offset) > (b.votes, -b.variant, -b.offset)


def _top(votes) -> list[OffsetVote]:
    ranked = sorted(votes, key=lambda v: (-v.votes, v.variant, v.offset, v.entry_id))
    return ranked[:MAX_CANDIDATES]


class BruteForceAudioIndex(AudioIndex):
    """Each entry's landmarks kept apart; voting by dictionaries and loops."""

    def __init__(self, max_postings_per_hash: int = DEFAULT_MAX_POSTINGS_PER_HASH) -> None:
        self.max_postings_per_hash = max_postings_per_hash
        self._entries: dict[int, AudioEntry] = {}

    def add(self, entry_id: int, entry: AudioEntry) -> None:
        if entry_id in self._entries:
            raise ValueError(f"entry {entry_id} is already in the audio index")
        self._entries[entry_id] = entry

    def peaks(self, entry_id: int) -> tuple[np.ndarray, np.ndarray]:
        entry = self._entries[entry_id]
        return entry.peak_frames, entry.peak_pitches

    def remove(self, entry_ids: Sequence[int]) -> int:
        removed = 0
        for entry_id in set(entry_ids):
            removed += self._entries.pop(entry_id, None) is not None
        return removed

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def postings(self) -> int:
        return sum(len(entry.hashes) for entry in self._entries.values())

    def vote(self, variants: Sequence[QueryLandmarks]) -> list[OffsetVote]:
        frequency: dict[int, int] = defaultdict(int)
        for entry in self._entries.values():
            for value in entry.hashes.tolist():
                frequency[value] += 1
        best: dict[int, OffsetVote] = {}
        for variant_index, query in enumerate(variants):
            query_hashes = np.asarray(query.hashes, dtype=np.uint32).tolist()
            query_times = np.asarray(query.times, dtype=np.float64).tolist()
            for entry_id, entry in self._entries.items():
                positions: dict[int, list[int]] = defaultdict(list)
                times = np.rint(entry.times).astype(np.int64).tolist()
                for value, time in zip(entry.hashes.tolist(), times, strict=True):
                    positions[value].append(time)
                for shifted in (False, True):
                    # bin -> {query landmark: [reference times]}
                    bins: dict[int, dict[int, list[int]]] = defaultdict(dict)
                    for i, value in enumerate(query_hashes):
                        if frequency[value] > self.max_postings_per_hash:
                            continue
                        for ref_time in positions.get(value, []):
                            offset = ref_time - query_times[i]
                            key = int(np.floor(offset / OFFSET_BIN + (0.5 if shifted else 0)))
                            bins[key].setdefault(i, []).append(ref_time)
                    if not bins:
                        continue
                    key = min(bins, key=lambda k: (-len(bins[k]), k))
                    members = bins[key]
                    ref_times = [t for times_ in members.values() for t in times_]
                    q_times = [query_times[i] for i in members]
                    vote = OffsetVote(
                        entry_id=entry_id,
                        variant=variant_index,
                        offset=_bin_centre(key, shifted),
                        votes=len(members),
                        distinct_hashes=len({query_hashes[i] for i in members}),
                        query_start=min(q_times),
                        query_end=max(q_times),
                        ref_start=float(min(ref_times)),
                        ref_end=float(max(ref_times)),
                    )
                    current = best.get(entry_id)
                    if current is None or _better(vote, current):
                        best[entry_id] = vote
        return _top(best.values())
