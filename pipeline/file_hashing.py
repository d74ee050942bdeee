"""Fingerprinting many files at once: `hash_file` for each, in crash-proof worker processes
(`pipeline.workers`), under the per-item budgets, results in order of completion.

Shared by `ansim scan`, `ansim ref add` and `ansim hash`: each records or prints an item as
soon as it comes back, so a slow video never holds up the photos behind it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ansim.detector.decision import MatchRules
from ansim.detector.descriptor import load_descriptor_model
from ansim.detector.hashing import HashOptions
from ansim.detector.image_robust import ROBUST_OPTION, descriptor_available
from ansim.detector.signals import MediaSignals
from ansim.detector.sniff import sniff_file
from ansim.pipeline.workers import (
    Budgets,
    ItemBudget,
    Outcome,
    WorkerPool,
    run_in_process,
)
from ansim.signal_types.hashing import hash_file
from ansim.store.home import Home

if TYPE_CHECKING:
    from ansim.pipeline.banks import Banks
    from ansim.pipeline.matching import Finding
    from ansim.store.db import Store


def budgeted_options(options: HashOptions, budgets: Budgets) -> HashOptions:
    """The hashers' own limits tightened to the budgets (a bomb is refused before decoding;
    a video stops decoding at its budget and keeps what it hashed)."""
    image = dataclasses.replace(
        options.image, max_pixels=min(options.image.max_pixels, budgets.image_max_pixels)
    )
    video = dataclasses.replace(
        options.video, max_decode_s=min(options.video.max_decode_s, budgets.video_decode_s)
    )
    return dataclasses.replace(options, image=image, video=video)


def hash_work(job: tuple[Path, HashOptions], budget: ItemBudget) -> MediaSignals:
    """One file: sniffed first so its kind's budget applies to the decoding."""
    path, options = job
    try:
        kind = sniff_file(path).modality
    except OSError:
        kind = "unknown"  # hash_file says why (vanished, unreadable, a directory)
    budget.begin(kind)
    return hash_file(path, options)


def init_hash_worker(options: HashOptions) -> None:
    """Once per worker: one thread each for the libraries that spawn their own (a worker per
    core already keeps every core busy), and the descriptor model loaded before any item."""
    import cv2
    import faiss

    faiss.omp_set_num_threads(1)
    cv2.setNumThreads(1)
    if options.extra.get(ROBUST_OPTION, True) and descriptor_available():
        load_descriptor_model()


def hashing_modules(options: HashOptions, matching: bool = False) -> tuple[str, ...]:
    """What every worker imports, imported once in the forkserver it forks from rather than
    by every worker as it starts (faiss alone is about 0.1 s of CPU per process). Workers
    that match also import the matcher, the store's tables and every signal type."""
    modules = ["ansim.detector.hashing", "ansim.detector.pdq_fast", "faiss"]
    if options.extra.get(ROBUST_OPTION, True) and descriptor_available():
        modules.append("ansim.detector.descriptor")
    if matching:
        modules += ["ansim.pipeline.matching", "ansim.pipeline.banks", "ansim.store.db"]
    return tuple(modules)


@dataclass(frozen=True)
class MatchedFile:
    """A file's signals and the references they match: found by the worker that hashed
    it (`hash_paths` with `matching`), or by the process that records it."""

    signals: MediaSignals
    findings: list[Finding]


# Per matching worker: the store and reference banks it matches against (opened once).
_worker_banks: dict[Home, tuple[Store, Banks]] = {}


def _banks_for(home: Home) -> tuple[Store, Banks]:
    if home not in _worker_banks:
        from ansim.pipeline.banks import Banks
        from ansim.store.db import Store

        _worker_banks[home] = (Store(home.db_url), Banks(home.index_dir))
    return _worker_banks[home]


def init_match_worker(options: HashOptions, home: Home, modalities: frozenset[str]) -> None:
    """As `init_hash_worker`, and the reference banks that files of these `modalities` are
    matched against opened and loaded here, before any item's budget applies: the banks'
    memory and load time are the worker's, not an item's. The caller brought them level
    with the store before starting workers, so this only reads them."""
    from ansim import signal_types

    init_hash_worker(options)
    store, banks = _banks_for(home)
    with store.read_session() as session:
        for signal_type in signal_types.REGISTRY:
            if signal_type.index is not None and signal_type.modalities & modalities:
                banks.index(session, signal_type.name)


def hash_and_match_work(
    job: tuple[Path, HashOptions, Home, MatchRules], budget: ItemBudget
) -> MatchedFile:
    """One file hashed (`hash_work`) and matched against the reference bank, under the
    budget of its kind: done here, matching (index searches, verification) runs on every
    worker instead of in the one recording process, which would otherwise be the scan's
    serial step once there are more workers than it keeps up with."""
    from ansim.pipeline.matching import find_matches

    path, options, home, rules = job
    signals = hash_work((path, options), budget)
    store, banks = _banks_for(home)
    with store.read_session() as session:
        return MatchedFile(signals, find_matches(session, banks, signals, rules))


def _is_image(path: Path) -> bool:
    try:
        return sniff_file(path).modality == "image"
    except OSError:
        return False


# The files sniffed to choose which banks a matching worker loads before its first item
# (others load when first used): a start-up read, not one of every file of a large scan.
PRELOAD_SNIFFED_FILES = 1000


def _modalities(paths: list[Path]) -> set[str]:
    found = set()
    for path in paths[:PRELOAD_SNIFFED_FILES]:
        try:
            found.add(sniff_file(path).modality)
        except OSError:
            continue  # hash_file says why (vanished, unreadable, a directory)
    return found


def _without_descriptor(options: HashOptions) -> HashOptions:
    """Options for starting workers that will see no image: the descriptor model stays out
    (its weights read and folded, about 20 ms of CPU per worker, for nothing)."""
    return dataclasses.replace(options, extra={**options.extra, ROBUST_OPTION: False})


def hash_paths(
    paths: Iterable[Path],
    options: HashOptions,
    workers: int,
    budgets: Budgets = Budgets(),
    on_start: Callable[[Any, Any], None] | None = None,
    engine: str = "local",
    address: str | None = None,
    matching: tuple[Home, MatchRules] | None = None,
    tick_s: float | None = None,
) -> Iterator[Outcome | None]:
    """An `Outcome` per path (its key), in order of completion; `value` is its MediaSignals.

    `workers=0` hashes in this process (no isolation from crashes or hangs); N > 0 runs N
    worker processes, never more than there are files. A single file is hashed in this
    process too: there is nothing else for its crash to stop, and starting a worker (imports,
    the descriptor model) would cost more than the file. `engine="ray"` hashes on Ray
    actors instead (`pipeline.ray_engine`; `address` names the cluster, none starts one).

    `matching` (home, rules): worker processes also match each file against the home's
    reference bank, and `value` is a `MatchedFile`; the caller brings the banks level with
    the store first (`Banks.bring_level`). Hashed in this process or on Ray, `value` stays
    the MediaSignals, for the caller to match. `tick_s`: with worker processes, also yield
    None whenever that long passed without a file ending (`WorkerPool.run`)."""
    listed = list(paths)
    images = engine == "local" and any(_is_image(p) for p in listed)
    if images and options.extra.get(ROBUST_OPTION, True):
        load_descriptor_model()  # unusable weights stop the run here, not at every image
    if engine == "ray":
        from ansim.pipeline.ray_engine import ray_hash_paths

        yield from ray_hash_paths(listed, options, budgets, address, workers or None, on_start)
        return
    if engine != "local":
        raise ValueError(f"unknown engine {engine!r} (local or ray)")
    jobs = ((path, (path, budgeted_options(options, budgets))) for path in listed)
    if workers == 0 or len(listed) <= 1:
        yield from run_in_process(hash_work, jobs, budgets)
        return
    processes = min(workers, len(listed))
    worker_options = options if images else _without_descriptor(options)
    if matching is None:
        work: Callable[[Any, ItemBudget], Any] = hash_work
        initializer: Callable[..., None] = init_hash_worker
        initargs: tuple[Any, ...] = (worker_options,)
    else:
        home, rules = matching
        work, initializer = hash_and_match_work, init_match_worker
        modalities = frozenset(_modalities(listed) | ({"image"} if images else set()))
        initargs = (worker_options, home, modalities)
        jobs = ((key, (*job, home, rules)) for key, job in jobs)
    with WorkerPool(
        work,
        processes,
        initializer=initializer,
        initargs=initargs,
        budgets=budgets,
        on_start=on_start,
        preload=hashing_modules(worker_options, matching is not None),
    ) as pool:
        yield from pool.run(jobs, tick_s)
