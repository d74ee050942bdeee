"""`ansim bench scale`: the PDQ bank at a national center's volume.

For each size in `--entries` it writes a hash list of that many lines (random PDQ hashes
plus planted near copies of real photos' hashes: per photo one at 4, 16 and 28 bits and
one at 36, past the radius), then, each step in a fresh process so memory and start-up
are its own:

- import: `ref import` of the whole list into a new SQLite store (wall, CPU, peak RSS);
- open: a new process opens the workspace and answers its first lookup (index file read,
  store count check, a scan), then builds the chunk tables (timed apart);
- lookups: every photo's 8 dihedral hashes (as a scan queries an image) and random
  queries, radius 31, one image's 8 at a time; recall against the exhaustive twin
  (FAISS flat range search over the same hashes), which must be 1.0 with nothing extra;
- add / withdraw: one more reference imported, one withdrawn (store, bank, index files),
  with the bytes of index files each one wrote (a delta segment and the manifest);
- bytes per entry: the index in memory (hashes, ids, tables) and on disk.

For each size in `--history`, the crawl history's PDQ index alone (no store), as a
compaction writes it (a table file, `indexer/mih_table_file.py`) and a retro-hunt opens
it (mapped, in a fresh process): build time, open time, lookups/s, one image retro-hunted
(its 8 dihedral hashes at 31 and 90 bits), a 10-minute video's 6,000 frame hashes at 31
bits (and, estimated from 50, at the video matcher's vote radius: the one-step search
`frame_votes` avoids), resident bytes per entry and the process's memory (heap and mapped
file pages apart); with `--history-memory-limit`, inside a memory cgroup. For each size in
`--descriptors`, the compressed descriptor index (IvfDescriptorIndex) against the exact
one: build time, queries/s, candidate recall, resident bytes per entry. For each size in
`--robust-descriptors`, the descriptor bank's index on the real queries of `ansim bench
robust` planted among that many synthetic descriptors (`robust_descriptors`).

For each size in `--text-refs`, a text reference bank (synthetic entries plus 200 real
texts) saved, then opened in a fresh process: open time, first answer, queries/s of the
real texts' typo'd copies and the share found. For each size in `--audio-hours`, an
audio bank of synthetic 3-minute entries at the measured landmark density, written
streamed (`write_audio_bank`) and opened the same way: build time, open time, votes/s
for 20 stored clips and 20 of noise, clips found, pages read from disk; with
`--audio-memory-limit`, inside a memory cgroup (the file's pages not resident).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ansim.benchmarks.processes import in_child

RADIUS = 31
PLANTED_BITS = (4, 16, 28, 36)
RANDOM_QUERIES = 200
# Frame hashes a 10-minute reference video puts to the history: 10 a second (usable frames
# and their crop variants; RESULTS.md "scale" has the range, 6,000-90,000), estimated
# from the time of a sample of this many.
VIDEO_FRAME_HASHES = 6_000
VIDEO_SAMPLE_HASHES = 50
LIST_CHUNK = 1_000_000
TEXT_PLANTED = 200


def _bank_texts(folder: Path | None, count: int) -> list[str]:
    from ansim.benchmarks.text import load_texts

    if folder is None:
        raise ValueError("text banks need the shared texts")
    texts = [t.text for t in load_texts(folder) if len(t.text) >= 40]
    return texts[:: max(1, len(texts) // count)][:count]


@dataclass
class ScaleConfig:
    out: Path
    images: Path
    entries: list[int]
    history: list[int] = field(default_factory=list)
    descriptors: list[int] = field(default_factory=list)
    # Synthetic descriptors among which the robust benchmark's real ones are planted.
    robust_descriptors: list[int] = field(default_factory=list)
    text_references: list[int] = field(default_factory=list)
    audio_hours: list[float] = field(default_factory=list)
    texts: Path | None = None  # real texts planted in the text bank (shared data's)
    photos: int = 60
    seed: int = 0
    # The history's open step runs inside a memory cgroup of this many bytes (None: not).
    history_memory_limit: int | None = None
    # The audio bank's open and query step likewise.
    audio_memory_limit: int | None = None
    # Real recordings (shared data's): the first at least `audio_clip_seconds` long gives
    # the query an analyst's clip brings, every variant of the query grid included.
    audio_recordings: Path | None = None
    audio_clip_seconds: float = 10.0


def photo_hashes(images: Path, limit: int) -> list[list[str]]:
    """The 8 dihedral PDQ hashes of up to `limit` photos (quality >= 50 only)."""
    from ansim.detector.pdq import hash_pixels_dihedral
    from PIL import Image

    found: list[list[str]] = []
    for path in sorted(images.rglob("*")):
        if len(found) >= limit:
            break
        if path.suffix.lower() not in {".png", ".jpg", ".jpeg"}:
            continue
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
        hashes, quality = hash_pixels_dihedral(rgb)
        if quality >= 50:
            found.append(hashes)
    return found


def _flipped(code: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    out = code.copy()
    for position in rng.choice(256, bits, replace=False):
        out[position // 8] ^= np.uint8(1 << (position % 8))
    return out


def write_list(path: Path, entries: int, photos: list[list[str]], seed: int) -> None:
    """`entries` PDQ lines: random, with near copies of each photo's hash planted."""
    rng = np.random.default_rng(seed)
    planted: dict[int, np.ndarray] = {}
    rows = rng.choice(entries, len(photos) * len(PLANTED_BITS), replace=False)
    for i, hashes in enumerate(photos):
        original = np.frombuffer(bytes.fromhex(hashes[0]), dtype=np.uint8)
        for j, bits in enumerate(PLANTED_BITS):
            planted[int(rows[i * len(PLANTED_BITS) + j])] = _flipped(original, bits, rng)
    with open(path, "w", encoding="ascii") as out:
        for start in range(0, entries, LIST_CHUNK):
            codes = rng.integers(0, 256, (min(LIST_CHUNK, entries - start), 32), dtype=np.uint8)
            for row, code in planted.items():
                if start <= row < start + len(codes):
                    codes[row - start] = code
            text = codes.tobytes().hex()
            out.write("\n".join(text[i : i + 64] for i in range(0, len(text), 64)) + "\n")


def read_list(path: Path) -> np.ndarray:
    """The hashes of a list `write_list` wrote (65 bytes a line) as (n, 32) uint8."""
    lines = np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, 65)
    nibble = np.zeros(256, dtype=np.uint8)
    nibble[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)
    codes = np.empty((len(lines), 32), dtype=np.uint8)
    for start in range(0, len(lines), LIST_CHUNK):
        digits = nibble[lines[start : start + LIST_CHUNK, :64]]
        codes[start : start + LIST_CHUNK] = (digits[:, 0::2] << 4) | digits[:, 1::2]
    return codes


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _workspace(home: Path):  # type: ignore[no-untyped-def]
    from ansim.pipeline.workspaces import init_workspace
    from ansim.store.home import Home

    return init_workspace(Home(home, f"sqlite:///{home / 'ansim.db'}"))[0]


def import_step(home: Path, list_file: Path) -> dict[str, Any]:
    from ansim.casework import cases
    from ansim.pipeline import intake

    workspace = _workspace(home)
    case_id = cases.open_case(workspace, "other")
    wall, cpu = time.perf_counter(), time.process_time()
    report = intake.import_hash_list(workspace, case_id, list_file, "pdq")
    result = {
        "import_s": round(time.perf_counter() - wall, 1),
        "import_cpu_s": round(time.process_time() - cpu, 1),
        "import_peak_rss_mb": round(_peak_rss_mb()),
        "imported": report.imported,
        "first_reference_id": report.first_reference_id,
        "case_id": case_id,
    }
    workspace.close()
    return result


def lookup_step(home: Path, list_file: Path, photos: list[list[str]], seed: int) -> dict[str, Any]:
    import faiss
    from ansim.indexer.mih_pdq_index import MihPdqIndex

    started = time.perf_counter()
    workspace = _workspace(home)
    with workspace.store.session() as session:
        index = workspace.banks.index(session, "pdq")
    loaded = time.perf_counter()
    index.search([photos[0][0]], RADIUS)
    answered = time.perf_counter()
    if isinstance(index, MihPdqIndex):
        index.build()  # a long scan builds them after SCANS_BEFORE_BUILD queries anyway
    built = time.perf_counter()
    rng = np.random.default_rng(seed + 1)
    randoms = [bytes(c).hex() for c in rng.integers(0, 256, (RANDOM_QUERIES, 32), dtype=np.uint8)]
    batches = photos + [randoms[i : i + 8] for i in range(0, len(randoms), 8)]
    wall, cpu = time.perf_counter(), time.process_time()
    found = [index.search(batch, RADIUS) for batch in batches]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    queries = sum(len(b) for b in batches)
    twin = faiss.IndexBinaryFlat(256)
    twin.add(read_list(list_file))
    expected_hits = missed = extra = 0
    for batch, hits in zip(batches, found, strict=True):
        codes = np.frombuffer(bytes.fromhex("".join(batch)), dtype=np.uint8).reshape(-1, 32)
        limits, distances, rows = twin.range_search(codes, RADIUS + 1)
        for q in range(len(batch)):
            want = {
                (int(d), int(r) + 1)
                for d, r in zip(
                    distances[limits[q] : limits[q + 1]],
                    rows[limits[q] : limits[q + 1]],
                    strict=True,
                )
            }
            got = {(h.distance, h.entry_id) for h in hits[q]}
            expected_hits += len(want)
            missed += len(want - got)
            extra += len(got - want)
    result = {
        "open_load_s": round(loaded - started, 2),
        "open_first_answer_s": round(answered - started, 2),
        "build_tables_s": round(built - answered, 2),
        "lookups": queries,
        "lookups_per_s": round(queries / wall),
        "lookups_per_cpu_s": round(queries / max(cpu, 1e-9)),
        "images_per_s": round(len(batches) / wall, 1),
        "twin_hits": expected_hits,
        "recall": round(1 - missed / expected_hits, 6) if expected_hits else None,
        "extra_hits": extra,
        "index_bytes_per_entry": (
            round(index.memory_bytes() / len(index), 1) if isinstance(index, MihPdqIndex) else None
        ),
        "index_file_bytes_per_entry": round(workspace.banks.disk_bytes("pdq") / len(index), 1),
        "lookup_peak_rss_mb": round(_peak_rss_mb()),
    }
    workspace.close()
    return result


def change_step(home: Path, case_id: str, photo: list[str], reference_id: int) -> dict[str, Any]:
    from ansim.pipeline import intake

    workspace = _workspace(home)
    with workspace.store.session() as session:
        workspace.banks.index(session, "pdq").search([photo[0]], RADIUS)  # loaded and built
    index_dir = home / "index"
    one = home / "one.txt"
    one.write_text(photo[0] + ",added\n")
    before = _index_files(index_dir)
    started = time.perf_counter()
    intake.import_hash_list(workspace, case_id, one, "pdq")
    added = time.perf_counter()
    after_add = _index_files(index_dir)
    intake.withdraw_reference(workspace, reference_id, "bench")
    withdrawn = time.perf_counter()
    after_withdraw = _index_files(index_dir)
    workspace.close()
    return {
        "add_one_s": round(added - started, 2),
        "withdraw_one_s": round(withdrawn - added, 2),
        "add_one_bytes_written": _written(before, after_add),
        "withdraw_one_bytes_written": _written(after_add, after_withdraw),
    }


def _index_files(index_dir: Path) -> dict[str, tuple[int, int, int]]:
    """The reference PDQ bank's files: name -> (inode, mtime, size)."""
    return {
        path.name: (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        for path in index_dir.glob("reference-pdq.index*")
        if not path.name.endswith(".lock")
        for stat in [path.stat()]
    }


def _written(
    before: dict[str, tuple[int, int, int]], after: dict[str, tuple[int, int, int]]
) -> int:
    """Bytes of the files that are new or were rewritten between two looks."""
    return sum(state[2] for name, state in after.items() if before.get(name) != state)


def history_build_step(path: Path, entries: int, seed: int) -> dict[str, Any]:
    """The history's table file written from random hashes, a batch at a time (as a
    compaction streams the bank's two layers into it)."""
    from ansim.indexer.mih_table_file import write_table_file

    def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        rng = np.random.default_rng(seed)
        for start in range(0, entries, LIST_CHUNK):
            count = min(LIST_CHUNK, entries - start)
            ids = np.arange(start + 1, start + count + 1, dtype=np.int64)
            yield ids, rng.integers(0, 256, (count, 32), dtype=np.uint8)

    started = time.perf_counter()
    write_table_file(path, entries, batches())
    return {"build_s": round(time.perf_counter() - started, 1), "build_peak_rss_mb": _rss()["peak"]}


def history_open_step(
    path: Path, entries: int, photos: list[list[str]], seed: int
) -> dict[str, Any]:
    """The history opened in a fresh process as a retro-hunt opens it: lookups at the
    matching radius, one image retro-hunted (its 8 dihedral hashes at 31 bits and at the
    robust decision's 90, which scans every hash), a 10-minute video's worth of frame
    hashes, and the memory all that left resident."""
    from ansim.detector.image_decision import PDQ_NO_EVIDENCE
    from ansim.detector.video_match import VideoMatchRules
    from ansim.indexer.layered_pdq_index import load_history_pdq

    started = time.perf_counter()
    index = load_history_pdq(path)
    opened = time.perf_counter() - started
    rng = np.random.default_rng(seed + 1)

    def random_hashes(count: int) -> list[str]:
        return [bytes(c).hex() for c in rng.integers(0, 256, (count, 32), dtype=np.uint8)]

    index.search(photos[0], RADIUS)  # the compiled loops loaded before the clocks start
    randoms = random_hashes(RANDOM_QUERIES)
    batches = photos + [randoms[i : i + 8] for i in range(0, len(randoms), 8)]
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        index.search(batch, RADIUS)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    lookups = sum(len(b) for b in batches)
    image = photos[-1]
    hunt = time.perf_counter()
    index.search(image, RADIUS)
    index.search(image, PDQ_NO_EVIDENCE)
    hunt = time.perf_counter() - hunt
    # A video reference's frames are searched at the image radius (`frame_votes`: only
    # owners with a frame that close can match; their other frames are compared apart),
    # timed for a 10-minute video; one search at the vote radius, timed on a sample, is
    # what that saves.
    video = time.perf_counter()
    index.search(random_hashes(VIDEO_FRAME_HASHES), RADIUS)
    video = time.perf_counter() - video
    memory = _rss()  # before the one-step search, which reads far more than a retro-hunt
    vote_radius = VideoMatchRules().vote_distance
    wide_video = time.perf_counter()
    index.search(random_hashes(VIDEO_SAMPLE_HASHES), vote_radius)
    wide_per_hash = (time.perf_counter() - wide_video) / VIDEO_SAMPLE_HASHES
    resident = getattr(index, "memory_bytes", lambda: 0)()
    return {
        "history_entries": entries,
        "open_s": round(opened, 3),
        "lookups_per_s": round(lookups / wall),
        "lookups_per_cpu_s": round(lookups / max(cpu, 1e-9)),
        "image_retro_hunt_s": round(hunt, 2),
        "video_retro_hunt_s": round(video, 1),
        "video_one_step_lookup_ms": round(1000 * wide_per_hash, 2),
        "video_one_step_s": round(wide_per_hash * VIDEO_FRAME_HASHES, 1),
        "index_bytes_per_entry": round(resident / entries, 1),
        "file_bytes_per_entry": round(path.stat().st_size / entries, 1),
        "rss_mb": memory["now"],
        "rss_anonymous_mb": memory["anonymous"],
        "rss_file_mb": memory["file"],
        "peak_rss_mb": memory["peak"],
    }


def _open_step(
    limit: int | None, path: Path, function: Callable[..., dict[str, Any]], *args: Any
) -> dict[str, Any]:
    """A step that opens the file at `path`, in a fresh process; with a memory `limit`,
    inside a cgroup of that size, the file's pages dropped from the cache first (so that
    the step reads them itself, charged to its limit)."""
    if not limit:
        return in_child(function, *args)
    from ansim.benchmarks.memory_limit import forget_cached_pages, run_limited

    forget_cached_pages(path)
    return run_limited(limit, function, *args)


def _rss() -> dict[str, int]:
    """This process's resident memory now (all, anonymous, mapped files) and at its peak,
    in MB, from /proc (ru_maxrss alone cannot tell mapped file pages from the heap)."""
    fields = {"VmRSS": "now", "RssAnon": "anonymous", "RssFile": "file", "VmHWM": "peak"}
    found: dict[str, int] = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in fields:
                found[fields[name]] = round(int(value.split()[0]) / 1024)
    return found


def descriptor_step(entries: int, seed: int) -> dict[str, Any]:
    """The compressed descriptor index against the exact one: synthetic 128-d unit vectors
    in 1,000 themes (real descriptors cluster), queries = 500 degraded copies of stored
    vectors (similarity ~0.8-0.95, as crops and re-encodes give) + 100 unrelated."""
    from ansim.indexer.descriptor_index import FaissDescriptorIndex
    from ansim.indexer.ivf_descriptor_index import IvfDescriptorIndex

    dim, rng = 128, np.random.default_rng(seed)

    def unit(matrix: np.ndarray) -> np.ndarray:
        return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)

    themes = unit(rng.normal(size=(1000, dim)))
    vectors = np.empty((entries, dim), dtype=np.float32)
    for start in range(0, entries, LIST_CHUNK):
        count = min(LIST_CHUNK, entries - start)
        detail = rng.normal(size=(count, dim)) * 0.35
        vectors[start : start + count] = unit(themes[rng.integers(0, 1000, count)] + detail)
    rows = rng.choice(entries, 500, replace=False)
    noise = rng.uniform(0.3, 0.8, (500, 1)) * rng.normal(size=(500, dim)) / np.sqrt(dim)
    queries = np.concatenate([unit(vectors[rows] + noise), unit(rng.normal(size=(100, dim)))])
    ids = np.arange(1, entries + 1)
    fast = IvfDescriptorIndex(dim)
    fast.add(ids, vectors)
    started = time.perf_counter()
    fast.build()
    built = time.perf_counter() - started
    fast.search(queries[:1], 10, 0.5)
    wall, cpu = time.perf_counter(), time.process_time()
    got = fast.search(queries, 10, 0.5)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    exact = FaissDescriptorIndex(dim)
    exact.add(ids, vectors)
    want = exact.search(queries, 10, 0.5)
    wanted = sum(len(w) for w in want)
    found = sum(
        len({h.entry_id for h in w} & {h.entry_id for h in g})
        for w, g in zip(want, got, strict=True)
    )
    return {
        "descriptor_entries": entries,
        "build_s": round(built, 1),
        "queries_per_s": round(len(queries) / wall),
        "queries_per_cpu_s": round(len(queries) / max(cpu, 1e-9)),
        "candidate_recall": round(found / wanted, 4) if wanted else None,
        "resident_bytes_per_entry": round(fast.memory_bytes() / entries, 1),
        "peak_rss_mb": round(_peak_rss_mb()),
    }


def _text_bank_file(path: Path, references: int, texts: list[str], seed: int) -> list[str]:
    """A saved LSH text bank: `references` synthetic entries (random shingle sets and
    MinHashes: they share no band with anything) plus the signatures of the real texts,
    whose ids come last. Returns the real texts' typo'd copies, the queries."""
    import random

    from ansim.benchmarks import text_evasions
    from ansim.detector.text import NUM_PERM, TextSignature, text_signals
    from ansim.indexer.text_index import LshTextIndex

    rng = np.random.default_rng(seed)
    index = LshTextIndex()
    for start in range(0, references, LIST_CHUNK // 10):
        count = min(LIST_CHUNK // 10, references - start)
        minhashes = rng.integers(0, 1 << 32, (count, NUM_PERM), dtype=np.uint32)
        shingles = np.sort(rng.integers(0, 1 << 32, (count, 120), dtype=np.uint32), axis=1)
        empty = np.zeros((0, NUM_PERM), dtype=np.uint32)
        signatures = [TextSignature(m, s, empty) for m, s in zip(minhashes, shingles, strict=True)]
        index.add(list(range(start + 1, start + count + 1)), signatures)
    index.add(
        list(range(references + 1, references + len(texts) + 1)),
        [text_signals(text).signature for text in texts],
    )
    index.save(path)
    typos = random.Random(seed)
    return [text_evasions.typos(text, typos) for text in texts]


def text_open_step(path: Path, references: int, queries: list[str]) -> dict[str, Any]:
    """Open the bank in a fresh process, answer the first query, then all of them."""
    from ansim.detector.text import text_signals
    from ansim.indexer.text_index import LshTextIndex

    signatures = [text_signals(query).signature for query in queries]
    started = time.perf_counter()
    index = LshTextIndex.load(path)
    opened = time.perf_counter()
    index.search(signatures[:1], 0.3)
    answered = time.perf_counter()
    wall, cpu = time.perf_counter(), time.process_time()
    hits = index.search(signatures, 0.3)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    found = sum(references + 1 + i in {h.entry_id for h in hit} for i, hit in enumerate(hits))
    return {
        "text_references": len(index),
        "text_open_s": round(opened - started, 3),
        "text_first_answer_s": round(answered - started, 3),
        "text_queries_per_s": round(len(signatures) / wall, 1),
        "text_queries_per_cpu_s": round(len(signatures) / max(cpu, 1e-9), 1),
        "text_copies_found": round(found / len(signatures), 4),
        "text_file_bytes_per_reference": round(path.stat().st_size / len(index), 1),
    }


# Landmarks per hour of reference audio (the density RESULTS.md "audio" measured) and the
# width of the synthetic landmark hashes (random; wider than the detector's, so each hash's
# run of postings is shorter than a real bank's).
AUDIO_POSTINGS_PER_HOUR = 800_000
AUDIO_HASH_BITS = 24
AUDIO_ENTRY_HOURS = 0.05  # a 3-minute recording per entry
AUDIO_CLIPS = 20


def _audio_entries(hours: float, seed: int) -> tuple[int, Callable[[], Iterator[Any]]]:
    """(entry count, a function yielding the synthetic entries): each entry's landmarks
    drawn from its own seed, so that every pass of a streamed build sees the same bank."""
    from ansim.indexer.audio_index import AudioEntry

    per_entry = int(AUDIO_POSTINGS_PER_HOUR * AUDIO_ENTRY_HOURS)
    frames = np.arange(per_entry, dtype=np.uint32) // 60
    peaks = np.arange(per_entry // 4, dtype=np.uint32)
    pitches = np.zeros(len(peaks), np.float32)
    count = int(hours / AUDIO_ENTRY_HOURS)

    def entries() -> Iterator[tuple[int, AudioEntry]]:
        for entry_id in range(1, count + 1):
            rng = np.random.default_rng([seed, entry_id])
            hashes = rng.integers(0, 1 << AUDIO_HASH_BITS, per_entry, dtype=np.uint32)
            yield entry_id, AudioEntry(hashes, frames, peaks, pitches)

    return count, entries


def _audio_bank_file(
    path: Path, hours: float, seed: int
) -> tuple[dict[str, Any], list[tuple[int, np.ndarray, np.ndarray]]]:
    """An audio bank of synthetic 3-minute entries (random landmark hashes) written as a
    rebuild writes a bank too large for memory (`write_audio_bank`, streamed); returns
    its build time and memory, and 20 clips of stored entries: (entry id, 300 of its
    landmarks' hashes, their times)."""
    from ansim.indexer.audio_index import write_audio_bank

    count, entries = _audio_entries(hours, seed)
    started, cpu = time.perf_counter(), time.process_time()
    write_audio_bank(path, entries)
    built = {
        "audio_build_s": round(time.perf_counter() - started, 1),
        "audio_build_cpu_s": round(time.process_time() - cpu, 1),
        "audio_build_peak_rss_mb": round(_peak_rss_mb()),
    }
    rng = np.random.default_rng(seed)
    clipped = set((rng.choice(count, min(AUDIO_CLIPS, count), replace=False) + 1).tolist())
    clips = []
    for entry_id, entry in entries():
        if entry_id in clipped:
            start = int(rng.integers(0, len(entry.hashes) - 300))
            window = slice(start, start + 300)
            clips.append((entry_id, entry.hashes[window], entry.times[window]))
    return built, clips


@dataclass(frozen=True)
class RealClip:
    """The query a real clip brings: its landmarks under every variant of the query grid."""

    name: str
    seconds: float
    variants: list[tuple[np.ndarray, np.ndarray]]  # (hashes, times) per variant


def real_clip_query(recordings: Path, seconds: float) -> RealClip | None:
    """The first `seconds` of the first recording at least that long, as a query
    (`query_variants`)."""
    from ansim.detector.audio import AudioOptions, fingerprint_file
    from ansim.detector.audio_landmarks import query_variants
    from ansim.detector.errors import MediaError
    from ansim.detector.sniff import sniff_file

    for path in sorted(recordings.rglob("*.ogg")):
        try:
            fingerprint = fingerprint_file(path, sniff_file(path).mime, AudioOptions())
        except MediaError:
            continue
        if fingerprint.duration < seconds:
            continue
        frames, pitches = fingerprint.frames, fingerprint.pitches
        start = frames.min()
        within = frames < start + seconds * (frames.max() - start) / fingerprint.duration
        variants = query_variants(frames[within], pitches[within])
        return RealClip(path.name, seconds, [(marks.hashes, marks.times) for _, marks in variants])
    return None


def _real_query_row(index: Any, clip: RealClip) -> dict[str, Any]:
    from ansim.indexer.audio_index import QueryLandmarks

    variants = [QueryLandmarks(hashes, times) for hashes, times in clip.variants]
    cpu = time.process_time()
    index.vote(variants)
    cpu = time.process_time() - cpu
    return {
        "audio_real_clip": clip.name,
        "audio_real_clip_s": clip.seconds,
        "audio_real_query_variants": len(variants),
        "audio_real_query_lookups": sum(len(v.hashes) for v in variants),
        "audio_real_query_hits": sum(len(index.hits(v)[0]) for v in variants),
        "audio_real_query_cpu_s": round(cpu, 3),
    }


def audio_open_step(
    path: Path,
    clips: list[tuple[int, np.ndarray, np.ndarray]],
    seed: int,
    real: RealClip | None = None,
) -> dict[str, Any]:
    """Open the bank in a fresh process; vote on the 20 clips (time-shifted, beside 7
    noise variants, as a query's pitch and tempo grid brings) and on 20 of noise alone,
    then on a real clip's query (`real`: its every variant, each hash drawn from the
    detector's landmarks: far more lookups than the synthetic ones). Page faults that
    read the disk are counted: under a memory limit below the file's size they show the
    bank answering from pages it did not have."""
    from ansim.indexer.audio_index import InvertedAudioIndex, QueryLandmarks

    faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    started = time.perf_counter()
    index = InvertedAudioIndex.load(path)
    opened = time.perf_counter()
    rng = np.random.default_rng(seed + 1)

    def noise() -> QueryLandmarks:
        hashes = rng.integers(0, 1 << AUDIO_HASH_BITS, 300, dtype=np.uint32)
        return QueryLandmarks(hashes, rng.uniform(0, 900, 300))

    queries = [[QueryLandmarks(h, t - 100.0)] + [noise() for _ in range(7)] for _, h, t in clips]
    queries += [[noise() for _ in range(8)] for _ in range(AUDIO_CLIPS)]
    index.vote(queries[0])
    answered = time.perf_counter()
    wall, cpu = time.perf_counter(), time.process_time()
    votes = [index.vote(query) for query in queries]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    found = sum(bool(v) and v[0].entry_id == c[0] for v, c in zip(votes, clips, strict=False))
    real_row = _real_query_row(index, real) if real else {}
    memory = _rss()
    return {
        **real_row,
        "audio_entries": len(index),
        "audio_postings": index.postings,
        "audio_open_s": round(opened - started, 3),
        "audio_first_answer_s": round(answered - started, 3),
        "audio_queries_per_s": round(len(queries) / wall, 1),
        "audio_queries_per_cpu_s": round(len(queries) / max(cpu, 1e-9), 1),
        "audio_clips_found": round(found / len(clips), 3),
        "audio_file_mb": round(path.stat().st_size / 2**20, 1),
        "audio_file_bytes_per_posting": round(path.stat().st_size / max(index.postings, 1), 2),
        "audio_major_faults": resource.getrusage(resource.RUSAGE_SELF).ru_majflt - faults,
        "audio_rss_mb": memory["now"],
        "audio_rss_file_mb": memory["file"],
        "audio_peak_rss_mb": memory["peak"],
    }


def run_scale_benchmark(config: ScaleConfig, log: Callable[[str], None]) -> dict[str, Any]:
    config.out.mkdir(parents=True, exist_ok=True)
    photos = photo_hashes(config.images, config.photos)
    if not photos:
        raise ValueError(f"no photos of PDQ quality >= 50 under {config.images}")
    report: dict[str, Any] = {
        "radius": RADIUS,
        "photos": len(photos),
        "banks": [],
        "history": [],
        "descriptors": [],
        "robust_descriptors": [],
        "text": [],
        "audio": [],
    }
    for entries in config.entries:
        home = config.out / f"bank-{entries}"
        if home.exists():
            raise ValueError(f"{home} exists: give an empty --out")
        home.mkdir()
        list_file = config.out / f"list-{entries}.txt"
        log(f"{entries:,} entries: writing the list")
        write_list(list_file, entries, photos, config.seed)
        log(f"{entries:,} entries: importing")
        row: dict[str, Any] = {"entries": entries}
        row.update(in_child(import_step, home, list_file))
        log(f"{entries:,} entries: opening and looking up")
        row.update(in_child(lookup_step, home, list_file, photos, config.seed))
        log(f"{entries:,} entries: adding and withdrawing one")
        row.update(
            in_child(change_step, home, row["case_id"], photos[0], row["first_reference_id"])
        )
        list_file.unlink()
        report["banks"].append(row)
    for entries in config.history:
        log(f"history index of {entries:,}")
        path = config.out / f"history-{entries}.tables"
        built = in_child(history_build_step, path, entries, config.seed)
        log(f"history index of {entries:,}: opening and searching")
        opened = _open_step(
            config.history_memory_limit, path, history_open_step, path, entries, photos, config.seed
        )
        report["history"].append({**built, **opened})
        path.unlink()
    for references in config.text_references:
        path = config.out / f"text-{references}.index"
        log(f"text bank of {references:,} references: building")
        texts = _bank_texts(config.texts, TEXT_PLANTED)
        queries = _text_bank_file(path, references, texts, config.seed)
        log(f"text bank of {references:,} references: opening and searching")
        report["text"].append(in_child(text_open_step, path, references, queries))
        path.unlink()
    real = None
    if config.audio_hours and config.audio_recordings is not None:
        real = real_clip_query(config.audio_recordings, config.audio_clip_seconds)
    for hours in config.audio_hours:
        path = config.out / f"audio-{hours:g}h.index"
        log(f"audio bank of {hours:g} hours: building")
        built, clips = in_child(_audio_bank_file, path, hours, config.seed)
        log(f"audio bank of {hours:g} hours: opening and searching")
        opened = _open_step(
            config.audio_memory_limit, path, audio_open_step, path, clips, config.seed, real
        )
        report["audio"].append({"audio_hours": hours, **built, **opened})
        path.unlink()
    for entries in config.descriptors:
        log(f"descriptor index of {entries:,}")
        report["descriptors"].append(in_child(descriptor_step, entries, config.seed))
    for distractors in config.robust_descriptors:
        from ansim.benchmarks.robust_descriptors import robust_descriptor_step

        log(f"descriptor bank: robust queries among {distractors:,} distractors")
        report["robust_descriptors"].append(
            in_child(robust_descriptor_step, distractors, config.images, config.photos, config.seed)
        )
    return report
