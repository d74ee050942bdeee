"""Audio landmark index: hash -> (entry id, time) postings, and offset voting.

A query brings one landmark set per assumed (time scale, pitch shift) variant. Every
posting that shares a hash with a query landmark is a hit; a hit proposes an alignment
offset (reference time - query time). Hits of a true copy pile up on one offset for one
variant; chance hits scatter. `vote` reports, per entry, the best-supported
(variant, offset) with the number of distinct query landmarks behind it and the time
ranges they span.

`InvertedAudioIndex` keeps postings sorted by hash (binary search, vectorised); adds go
to a small unsorted tail merged on demand, withdrawals filter the arrays.
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

# Offsets are binned in frames; each hit is counted in its bin and in the half-shifted
# bin grid, so an alignment that straddles a bin boundary is not split in two.
OFFSET_BIN = 4
MAX_CANDIDATES = 10
# Landmarks of one query hash that occur more often than this in the bank are stop
# words (silence edges, steady hums): they carry no identity and would flood the vote.
DEFAULT_MAX_POSTINGS_PER_HASH = 20_000
INDEX_FORMAT = 1


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
    """Postings sorted by hash in three parallel arrays (12 bytes a landmark)."""

    def __init__(self, max_postings_per_hash: int = DEFAULT_MAX_POSTINGS_PER_HASH) -> None:
        self.max_postings_per_hash = max_postings_per_hash
        self._hashes = np.zeros(0, dtype=np.uint32)
        self._entries = np.zeros(0, dtype=np.uint32)
        self._times = np.zeros(0, dtype=np.uint32)
        self._tail: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._peaks: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def add(self, entry_id: int, entry: AudioEntry) -> None:
        if entry_id in self._peaks:
            raise ValueError(f"entry {entry_id} is already in the audio index")
        if not 0 <= entry_id < 1 << 32:
            raise ValueError(f"entry id {entry_id} does not fit the index")
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

    def peaks(self, entry_id: int) -> tuple[np.ndarray, np.ndarray]:
        return self._peaks[entry_id]

    def _merge_tail(self) -> None:
        if not self._tail:
            return
        hashes = np.concatenate([self._hashes, *(t[0] for t in self._tail)])
        entries = np.concatenate([self._entries, *(t[1] for t in self._tail)])
        times = np.concatenate([self._times, *(t[2] for t in self._tail)])
        order = np.argsort(hashes, kind="stable")
        self._hashes, self._entries, self._times = hashes[order], entries[order], times[order]
        self._tail = []

    def remove(self, entry_ids: Sequence[int]) -> int:
        present = [e for e in set(entry_ids) if e in self._peaks]
        if not present:
            return 0
        self._merge_tail()
        keep = ~np.isin(self._entries, np.asarray(present, dtype=np.uint32))
        self._hashes, self._entries, self._times = (
            self._hashes[keep],
            self._entries[keep],
            self._times[keep],
        )
        for entry_id in present:
            del self._peaks[entry_id]
        return len(present)

    def __len__(self) -> int:
        return len(self._peaks)

    @property
    def postings(self) -> int:
        return len(self._hashes) + sum(len(t[0]) for t in self._tail)

    @property
    def nbytes(self) -> int:
        self._merge_tail()
        postings = self._hashes.nbytes + self._entries.nbytes + self._times.nbytes
        return postings + sum(f.nbytes + p.nbytes for f, p in self._peaks.values())

    def entry_ids(self) -> set[int]:
        return set(self._peaks)

    def hits(self, query: QueryLandmarks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query landmark index, entry id, reference time) of every posting matching."""
        self._merge_tail()
        hashes = np.asarray(query.hashes, dtype=np.uint32)
        starts = np.searchsorted(self._hashes, hashes, side="left")
        ends = np.searchsorted(self._hashes, hashes, side="right")
        counts = ends - starts
        counts[counts > self.max_postings_per_hash] = 0
        total = int(counts.sum())
        if total == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        landmark = np.repeat(np.arange(len(hashes)), counts)
        # Positions start..end-1 of each run, without a Python loop.
        run_starts = np.repeat(starts - np.cumsum(counts) + counts, counts)
        positions = run_starts + np.arange(total)
        return (
            landmark,
            self._entries[positions].astype(np.int64),
            self._times[positions].astype(np.int64),
        )

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
        self._merge_tail()
        ids = sorted(self._peaks)
        with open(path, "wb") as handle:
            np.savez(
                handle,
                format=np.array([INDEX_FORMAT]),
                hashes=self._hashes,
                entries=self._entries,
                times=self._times,
                entry_ids=np.array(ids, dtype=np.uint32),
                peak_counts=np.array([len(self._peaks[i][0]) for i in ids], dtype=np.int64),
                peak_frames=_concat([self._peaks[i][0] for i in ids], np.uint32),
                peak_pitches=_concat([self._peaks[i][1] for i in ids], np.float32),
                max_postings_per_hash=np.array([self.max_postings_per_hash]),
            )

    @classmethod
    def load(cls, path: Path) -> InvertedAudioIndex:
        with np.load(io.BytesIO(path.read_bytes())) as data:
            if int(data["format"][0]) != INDEX_FORMAT:
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
