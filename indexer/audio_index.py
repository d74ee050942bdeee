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

The file (format 3) keeps each hash once (CSR): where the run of postings of every hash
up to the largest starts, the hash being the position itself (one read a lookup), or,
where that table would be larger (a small bank), the distinct hashes, sorted, with where
each one's run starts. A posting is then only (entry row, time): the entry's
row among the file's sorted entry ids, shifted above the landmark's anchor frame, in as
few little-endian bytes as the bank's own largest row and frame need (`posting_layout`).
Entry ids below 2**32 (`add` refuses others) and frames kept as uint32 give at most 64
bits, so every bank fits; the widths are checked again when the file is written.
`write_audio_bank` writes the same file straight from a stream of entries, for banks
whose postings do not fit in memory. Format-2 files (hash, entry id, time: 12 bytes a
posting) and the earlier .npz are still read.

`BruteForceAudioIndex` keeps each entry's landmarks apart and votes with plain loops:
obviously right and slow, the twin the fast one is tested against.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ansim.indexer.array_file import Chunked, has_magic, read_arrays, write_arrays

# Offsets are binned in frames; each hit is counted in its bin and in the half-shifted
# bin grid, so an alignment that straddles a bin boundary is not split in two.
OFFSET_BIN = 4
MAX_CANDIDATES = 10
# Landmarks of one query hash that occur more often than this in the bank are stop
# words (silence edges, steady hums): they carry no identity and would flood the vote.
DEFAULT_MAX_POSTINGS_PER_HASH = 20_000
INDEX_FORMAT = 3
FILE_MAGIC = b"ANSIM-AUDIO-IX3\n"
SORTED_FORMAT = 2  # hash, entry id and time per posting; still read
SORTED_MAGIC = b"ANSIM-AUDIO-IX2\n"
NPZ_FORMAT = 1  # the earlier .npz layout, still read
# `write_audio_bank` counts postings per hash in a dense table over this many bits (the
# detector's landmark hashes are narrower: audio_landmarks' three fields).
STREAM_HASH_BITS = 24
# Postings gathered into one batch of a streamed build before they are sorted and placed.
STREAM_BATCH_POSTINGS = 1 << 22


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


class _SortedPostings:
    """Postings in memory (or a format-2 file): a hash, entry id and time each."""

    def __init__(self, hashes: np.ndarray, entries: np.ndarray, times: np.ndarray) -> None:
        self.hashes, self.entries, self.times = hashes, entries, times

    def __len__(self) -> int:
        return len(self.hashes)

    def runs(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first position, length) of each query hash's run of postings."""
        starts = np.searchsorted(self.hashes, hashes, side="left")
        ends = np.searchsorted(self.hashes, hashes, side="right")
        return starts, ends - starts

    def gather(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.entries[positions].astype(np.int64), self.times[positions].astype(np.int64)

    def triple(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.hashes, self.entries, self.times


class _PackedPostings:
    """A format-3 file's postings: runs found through `starts` (by hash, or through the
    distinct `keys`), each posting (entry row << time_bits | time) in `width` bytes."""

    def __init__(
        self,
        keys: np.ndarray | None,
        starts: np.ndarray,
        packed: np.ndarray,
        entry_ids: np.ndarray,
        time_bits: int,
    ) -> None:
        self.keys, self.starts, self.packed = keys, starts, packed
        self.entry_ids, self.time_bits = entry_ids, time_bits

    def __len__(self) -> int:
        return len(self.packed)

    def runs(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.keys is None:
            inside = hashes < len(self.starts) - 1
            at = np.where(inside, hashes, 0).astype(np.int64)
            starts = self.starts[at]
            return starts, np.where(inside, self.starts[at + 1] - starts, 0)
        if not len(self.keys):
            zeros = np.zeros(len(hashes), dtype=np.int64)
            return zeros, zeros
        at = np.searchsorted(self.keys, hashes)
        row = np.minimum(at, len(self.keys) - 1)
        found = (at < len(self.keys)) & (self.keys[row] == hashes)
        starts = self.starts[row]
        return starts, np.where(found, self.starts[row + 1] - starts, 0)

    def gather(self, positions: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        values = _unpack(np.asarray(self.packed[positions]))
        rows = (values >> np.uint64(self.time_bits)).astype(np.int64)
        times = (values & np.uint64((1 << self.time_bits) - 1)).astype(np.int64)
        return self.entry_ids[rows].astype(np.int64), times

    def triple(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        keys = np.arange(len(self.starts) - 1) if self.keys is None else self.keys
        hashes = np.repeat(np.asarray(keys, dtype=np.uint32), np.diff(self.starts))
        entries, times = self.gather(slice(None))
        return hashes, entries.astype(np.uint32), times.astype(np.uint32)


def posting_layout(entries: int, max_time: int) -> tuple[int, int]:
    """(time bits, bytes a posting) for a bank of `entries` entries whose latest landmark
    sits at frame `max_time`: a posting is the entry's row above the time's bits."""
    time_bits = max(1, int(max_time).bit_length())
    row_bits = max(1, (max(entries, 1) - 1).bit_length())
    if row_bits + time_bits > 64:
        raise ValueError(
            f"{entries} entries with frames up to {max_time} do not fit a 64-bit posting"
        )
    return time_bits, -(-(row_bits + time_bits) // 8)


def _pack(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) bytes: the low `width` bytes of each value, little-endian."""
    return np.ascontiguousarray(values.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :width])


def _unpack(rows: np.ndarray) -> np.ndarray:
    wide = np.zeros((len(rows), 8), dtype=np.uint8)
    wide[:, : rows.shape[1]] = rows
    return wide.view("<u8").ravel()


def _run_firsts(ordered: np.ndarray) -> np.ndarray:
    """Whether each value of a sorted array is the first of its run of equal values."""
    first = np.empty(len(ordered), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return first


def _hash_runs(sorted_hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct hashes, start of each one's run plus the end) of hashes sorted."""
    starts = np.flatnonzero(_run_firsts(sorted_hashes))
    return (
        np.asarray(sorted_hashes[starts], dtype=np.uint32),
        np.append(starts, len(sorted_hashes)).astype(np.int64),
    )


def _run_table(keys: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays that find each distinct hash's run of `lengths` postings: where the run
    of every hash up to the largest starts, unless that is larger than the distinct
    hashes with their runs' starts."""
    largest = int(keys[-1]) if len(keys) else -1
    if len(keys) and 8 * (largest + 2) <= 12 * len(keys) + 8:
        every = np.zeros(largest + 1, dtype=np.int64)
        every[keys] = lengths
        return {"starts": np.concatenate([[0], np.cumsum(every)]).astype(np.int64)}
    return {
        "keys": np.asarray(keys, dtype=np.uint32),
        "starts": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
    }


def _empty_postings() -> _SortedPostings:
    return _SortedPostings(*(np.zeros(0, dtype=np.uint32) for _ in range(3)))


class InvertedAudioIndex(AudioIndex):
    """Postings sorted by hash: in memory a hash, entry id and time each; in the saved
    file each hash once and a posting in a few bytes (the module's docstring).

    A saved index is memory-mapped on open, not read: a 10,000-hour bank holds billions
    of postings, of which a query reads the runs of its own hashes. Entries added since
    sit in a tail of their own (sorted when searched); withdrawn ones are filtered out of
    the answers, and both are folded into the file at the next save.
    """

    def __init__(self, max_postings_per_hash: int = DEFAULT_MAX_POSTINGS_PER_HASH) -> None:
        self.max_postings_per_hash = max_postings_per_hash
        self._base: _SortedPostings | _PackedPostings = _empty_postings()
        self._tail: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._sorted_tail: _SortedPostings | None = None
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
                _frames(entry.times),
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

    def _tail_postings(self) -> _SortedPostings:
        if self._sorted_tail is None:
            parts = self._tail
            hashes = _concat([t[0] for t in parts], np.uint32)
            order = np.argsort(hashes, kind="stable")
            self._sorted_tail = _SortedPostings(
                hashes[order],
                _concat([t[1] for t in parts], np.uint32)[order],
                _concat([t[2] for t in parts], np.uint32)[order],
            )
        return self._sorted_tail

    def _all_postings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every live posting, sorted by hash (the file's before the tail's on a tie)."""
        base, tail = self._base.triple(), self._tail_postings().triple()
        hashes = np.concatenate([base[0], tail[0]])
        order = np.argsort(hashes, kind="stable")
        entries = np.concatenate([base[1], tail[1]]).astype(np.uint32)[order]
        times = np.concatenate([base[2], tail[2]]).astype(np.uint32)[order]
        hashes = hashes[order]
        if self._withdrawn:
            keep = ~np.isin(entries, np.fromiter(self._withdrawn, dtype=np.uint32))
            hashes, entries, times = hashes[keep], entries[keep], times[keep]
        return hashes, entries, times

    def _compact(self) -> None:
        """Everything into memory arrays, withdrawn postings dropped (before a re-add)."""
        self._base = _SortedPostings(*self._all_postings())
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
        return len(self._base) + sum(len(t[0]) for t in self._tail)

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
        sources = (self._base, self._tail_postings())
        runs = [source.runs(hashes) for source in sources]
        counts = runs[0][1] + runs[1][1]
        # Over the cap: a stop word. With withdrawn entries still in the arrays, the cap
        # is applied to the live postings only (read them first).
        wanted = counts <= self.max_postings_per_hash
        if self._withdrawn:
            wanted[:] = True
        found = [_run_postings(source, starts, count * wanted)
                 for source, (starts, count) in zip(sources, runs, strict=True)]  # fmt: skip
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
        ids = np.array(sorted(self.entry_ids()), dtype=np.uint32)
        peaks = [self.peaks(i) for i in ids.tolist()]
        time_bits, width = posting_layout(len(ids), int(times.max()) if len(times) else 0)
        rows = np.searchsorted(ids, entries).astype(np.uint64)
        keys, starts = _hash_runs(hashes)
        arrays = {
            **_run_table(keys, np.diff(starts)),
            "postings": _pack((rows << np.uint64(time_bits)) | times, width),
            "entry_ids": ids,
            "peak_bounds": np.concatenate([[0], np.cumsum([len(f) for f, _ in peaks])]).astype(
                np.int64
            ),
            "peak_frames": _concat([f for f, _ in peaks], np.uint32),
            "peak_pitches": _concat([p for _, p in peaks], np.float32),
        }
        write_arrays(path, FILE_MAGIC, _file_meta(self.max_postings_per_hash, time_bits), arrays)

    @classmethod
    def load(cls, path: Path) -> InvertedAudioIndex:
        if has_magic(path, SORTED_MAGIC):
            meta, arrays = read_arrays(path, SORTED_MAGIC)
            if meta.get("format") != SORTED_FORMAT:
                raise ValueError(f"{path}: unknown audio index format; rebuild the index")
            index = cls(int(meta["max_postings_per_hash"]))
            index._base = _SortedPostings(arrays["hashes"], arrays["entries"], arrays["times"])
        elif has_magic(path, FILE_MAGIC):
            # A query reads a page or two of these at each of its hashes.
            meta, arrays = read_arrays(path, FILE_MAGIC, frozenset({"keys", "starts", "postings"}))
            if meta.get("format") != INDEX_FORMAT:
                raise ValueError(f"{path}: unknown audio index format; rebuild the index")
            index = cls(int(meta["max_postings_per_hash"]))
            index._base = _PackedPostings(
                arrays.get("keys"),
                arrays["starts"],
                arrays["postings"],
                arrays["entry_ids"],
                int(meta["time_bits"]),
            )
        else:
            return cls._load_npz(path)
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
            index._base = _SortedPostings(data["hashes"], data["entries"], data["times"])
            bounds = np.concatenate([[0], np.cumsum(data["peak_counts"])])
            frames, pitches = data["peak_frames"], data["peak_pitches"]
            for k, entry_id in enumerate(data["entry_ids"].tolist()):
                index._peaks[entry_id] = (
                    frames[bounds[k] : bounds[k + 1]],
                    pitches[bounds[k] : bounds[k + 1]],
                )
        return index


def write_audio_bank(
    path: Path,
    entries: Callable[[], Iterable[tuple[int, AudioEntry]]],
    max_postings_per_hash: int = DEFAULT_MAX_POSTINGS_PER_HASH,
    pass_postings: int = 1 << 27,
) -> None:
    """The file `save` writes for an index given these entries (ids ascending), built
    without holding the bank's postings: for banks larger than memory.

    `entries()` is read several times and must yield the same entries each time: once to
    count postings per hash, once per share of the hashes whose postings fit
    `pass_postings` (placed in memory, written in order), and twice for the peaks.
    """
    counts = np.zeros(1 << STREAM_HASH_BITS, dtype=np.int64)
    ids: list[int] = []
    peak_counts: list[int] = []
    max_time = 0
    for batch in _stream_batches(entries, ids, peak_counts):
        hashes, times = batch[0], batch[2]
        if len(hashes) and int(hashes.max()) >> STREAM_HASH_BITS:
            raise ValueError(f"a streamed audio bank takes hashes below 2**{STREAM_HASH_BITS}")
        counts += np.bincount(hashes, minlength=len(counts))
        max_time = max(max_time, int(times.max()) if len(times) else 0)
    time_bits, width = posting_layout(len(ids), max_time)
    keys = np.flatnonzero(counts).astype(np.uint32)
    total = int(counts.sum())
    hash_starts = np.concatenate([[0], np.cumsum(counts)])

    def postings() -> Iterator[np.ndarray]:
        low = 0
        while low < len(counts):
            # The widest share of hashes from `low` whose postings fit one pass (at least
            # one hash, however many postings it has).
            limit = hash_starts[low] + max(pass_postings, 1)
            high = max(low + 1, int(np.searchsorted(hash_starts, limit, side="right")) - 1)
            high = min(high, len(counts))
            yield _pack(_stream_pass(entries, low, high, hash_starts, time_bits), width)
            low = high

    index_bounds = np.concatenate([[0], np.cumsum(peak_counts)]).astype(np.int64)
    peak_total = int(index_bounds[-1])

    def peaks(field: str, dtype: type) -> Callable[[], Iterator[np.ndarray]]:
        def chunks() -> Iterator[np.ndarray]:
            for _, entry in entries():
                yield np.asarray(getattr(entry, field), dtype=dtype)

        return chunks

    arrays = {
        **_run_table(keys, counts[keys]),
        "postings": Chunked(np.dtype(np.uint8), (total, width), postings),
        "entry_ids": np.array(ids, dtype=np.uint32),
        "peak_bounds": index_bounds,
        "peak_frames": Chunked(np.dtype(np.uint32), (peak_total,), peaks("peak_frames", np.uint32)),
        "peak_pitches": Chunked(
            np.dtype(np.float32), (peak_total,), peaks("peak_pitches", np.float32)
        ),
    }
    write_arrays(path, FILE_MAGIC, _file_meta(max_postings_per_hash, time_bits), arrays)


def _file_meta(max_postings_per_hash: int, time_bits: int) -> dict[str, int]:
    return {
        "format": INDEX_FORMAT,
        "max_postings_per_hash": max_postings_per_hash,
        "time_bits": time_bits,
    }


def _stream_batches(
    entries: Callable[[], Iterable[tuple[int, AudioEntry]]],
    ids: list[int] | None = None,
    peak_counts: list[int] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(hashes, entry rows, times) of the stream's postings, a few million at a time, in
    stream order; the ids and peak counts are collected (and the ids checked) on the way."""
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    gathered = 0
    previous = -1
    for row, (entry_id, entry) in enumerate(entries()):
        if not previous < entry_id < 1 << 32:
            raise ValueError(f"entry {entry_id}: ids must rise and fit 32 bits")
        previous = entry_id
        if ids is not None:
            ids.append(entry_id)
        if peak_counts is not None:
            peak_counts.append(len(entry.peak_frames))
        hashes = np.asarray(entry.hashes, dtype=np.uint32)
        parts.append((hashes, np.full(len(hashes), row, dtype=np.uint64), _frames(entry.times)))
        gathered += len(hashes)
        if gathered >= STREAM_BATCH_POSTINGS:
            yield tuple(np.concatenate(column) for column in zip(*parts, strict=True))  # type: ignore[misc]
            parts, gathered = [], 0
    if parts:
        yield tuple(np.concatenate(column) for column in zip(*parts, strict=True))  # type: ignore[misc]


def _stream_pass(
    entries: Callable[[], Iterable[tuple[int, AudioEntry]]],
    low: int,
    high: int,
    hash_starts: np.ndarray,
    time_bits: int,
) -> np.ndarray:
    """The packed postings of hashes low..high-1, in file order: by hash, then in stream
    order (as `save`'s stable sort leaves them)."""
    base = int(hash_starts[low])
    out = np.empty(int(hash_starts[high]) - base, dtype=np.uint64)
    cursor = hash_starts[low:high] - base  # next free slot of each hash
    for hashes, rows, times in _stream_batches(entries):
        inside = (hashes >= low) & (hashes < high)
        local = hashes[inside].astype(np.int64) - low
        values = (rows[inside] << np.uint64(time_bits)) | times[inside]
        order = np.argsort(local, kind="stable")
        local, values = local[order], values[order]
        group_start = np.flatnonzero(_run_firsts(local))
        sizes = np.diff(np.append(group_start, len(local)))
        rank = np.arange(len(local)) - np.repeat(group_start, sizes)
        out[cursor[local] + rank] = values
        cursor[local[group_start]] += sizes
    return out


def _frames(times: np.ndarray) -> np.ndarray:
    return np.asarray(np.rint(times), dtype=np.uint32)


def _run_postings(
    source: _SortedPostings | _PackedPostings, starts: np.ndarray, counts: np.ndarray
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
    return (landmark, *source.gather(positions))


def _concat(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype=dtype)


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: faster here than numpy's hashing unique)."""
    ordered = np.sort(values)
    return ordered[_run_firsts(ordered)]


def _group(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each input value among them)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = _run_firsts(ordered)
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
