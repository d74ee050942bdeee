"""Fingerprinting many files at once: `hash_file` for each, in crash-proof worker processes
(`pipeline.workers`), under the per-item budgets, results in order of completion.

Shared by `ansim scan`, `ansim ref add` and `ansim hash`: each records or prints an item as
soon as it comes back, so a slow video never holds up the photos behind it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

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
        from ansim.detector.descriptor import load_descriptor_model

        load_descriptor_model()


def hashing_modules(options: HashOptions) -> tuple[str, ...]:
    """What every worker imports, imported once in the forkserver it forks from: torch alone
    takes seconds of CPU to import, per process, and the workers start at once."""
    modules = ["ansim.detector.hashing", "faiss"]
    if options.extra.get(ROBUST_OPTION, True) and descriptor_available():
        modules += ["torch", "ansim.models.descriptor"]
    return tuple(modules)


def _is_image(path: Path) -> bool:
    try:
        return sniff_file(path).modality == "image"
    except OSError:
        return False


def _without_descriptor(options: HashOptions) -> HashOptions:
    """Options for starting workers that will see no image: torch and the model stay out
    (seconds of CPU per worker, for text, audio and video alone)."""
    return dataclasses.replace(options, extra={**options.extra, ROBUST_OPTION: False})


def hash_paths(
    paths: Iterable[Path],
    options: HashOptions,
    workers: int,
    budgets: Budgets = Budgets(),
    on_start: Callable[[Any, Any], None] | None = None,
    engine: str = "local",
    address: str | None = None,
) -> Iterator[Outcome]:
    """An `Outcome` per path (its key), in order of completion; `value` is its MediaSignals.

    `workers=0` hashes in this process (no isolation from crashes or hangs); N > 0 runs N
    worker processes, never more than there are files. A single file is hashed in this
    process too: there is nothing else for its crash to stop, and starting a worker (imports,
    the descriptor model) would cost more than the file. `engine="ray"` hashes on Ray
    actors instead (`pipeline.ray_engine`; `address` names the cluster, none starts one)."""
    listed = list(paths)
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
    worker_options = options if any(_is_image(p) for p in listed) else _without_descriptor(options)
    with WorkerPool(
        hash_work,
        processes,
        initializer=init_hash_worker,
        initargs=(worker_options,),
        budgets=budgets,
        on_start=on_start,
        preload=hashing_modules(worker_options),
    ) as pool:
        yield from pool.run(jobs)
