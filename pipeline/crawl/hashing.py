"""The hashing workers: a pool that fingerprints fetched files and matches them.

Matching (index searches, image verification) is most of a crawl's CPU, so each worker
also matches what it hashed, against its own store handle and reference banks, opened
once per worker process (`_matching_banks`) and reloaded by the banks themselves when a
reference is added during the crawl. Worker processes start by forkserver: a crawl
process holds sockets, threads and the store, and is never forked.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from types import TracebackType

import cv2
import faiss
from ansim.detector.decision import MatchRules
from ansim.detector.hashing import HashOptions
from ansim.detector.image_robust import (
    LOCAL_FEATURES_OPTION,
    descriptor_available,
    local_features_file,
)
from ansim.detector.local_verify import SIGNAL_KIND as LOCAL_FEATURES_KIND
from ansim.detector.signals import MediaSignals
from ansim.pipeline.banks import Banks
from ansim.pipeline.matching import Finding, find_matches, image_searches, needs_local_features
from ansim.signal_types.hashing import hash_file
from ansim.store.db import Store
from ansim.store.home import Home


@dataclass(frozen=True)
class HashingPlan:
    """How crawled files are hashed and matched, from the crawl's image verification mode.

    Triage, with a descriptor to find candidates: an image's ORB features (most of its
    hashing CPU) are computed only when a candidate is left to verify, and only PDQ's and
    the descriptor's candidates with evidence are verified (see
    `ansim.signal_types.orb.needs_local_features` for what that gives up). Without
    a descriptor, triage is "all": local features are then the only robust evidence."""

    hash_options: HashOptions
    rules: MatchRules
    lazy_local_features: bool

    @classmethod
    def for_verification(cls, mode: str, max_file_bytes: int) -> HashingPlan:
        robust_here = descriptor_available()
        features_up_front = mode == "all" or (mode == "triage" and not robust_here)
        return cls(
            hash_options=HashOptions(
                max_file_bytes=max_file_bytes,
                extra={} if features_up_front else {LOCAL_FEATURES_OPTION: False},
            ),
            rules=MatchRules(image_triage=not features_up_front),
            lazy_local_features=mode == "triage" and robust_here,
        )


class HashingWorkers:
    """`processes` fingerprinting processes (0: one per CPU; 1: one thread in this process,
    no start-up cost, for small scans and tests). Use as a context manager: leaving it
    shuts the pool down and closes this process's matching store."""

    def __init__(self, home: Home, plan: HashingPlan, processes: int) -> None:
        self.home = home
        self.plan = plan
        processes = processes or os.cpu_count() or 1
        # Both pools start their workers on the first job, not here.
        self.pool: Executor = (
            ThreadPoolExecutor(1)
            if processes == 1
            else ProcessPoolExecutor(
                processes, mp_context=get_context("forkserver"), initializer=_init_hash_worker
            )
        )

    def __enter__(self) -> HashingWorkers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.pool.shutdown(wait=True)
        release_matching_banks(self.home)  # held here when hashing ran in-process

    async def fingerprint(self, path: Path) -> tuple[MediaSignals, list[Finding], bool]:
        """A file's signals, the references they match, and whether ORB features were
        computed on demand for it."""
        return await asyncio.get_running_loop().run_in_executor(
            self.pool,
            fingerprint_and_match,
            path,
            self.plan.hash_options,
            self.home,
            self.plan.rules,
            self.plan.lazy_local_features,
        )


# Per hashing worker: the store and reference banks it matches against (opened once).
_matching_banks: dict[Home, tuple[Store, Banks]] = {}


def release_matching_banks(home: Home) -> None:
    """Close this process's matching store for `home` (its connections) if it has one."""
    opened = _matching_banks.pop(home, None)
    if opened is not None:
        opened[0].dispose()


def fingerprint_and_match(
    path: Path, options: HashOptions, home: Home, rules: MatchRules, lazy_local_features: bool
) -> tuple[MediaSignals, list[Finding], bool]:
    """In a hashing worker: the file's signals, the references they match, and whether ORB
    features were added on demand (triage: only an image with a candidate to verify)."""
    signals = hash_file(path, options)
    if home not in _matching_banks:
        _matching_banks[home] = (Store(home.db_url), Banks(home.index_dir))
    store, banks = _matching_banks[home]
    featured = False
    with store.read_session() as session:
        # One candidate set: triage's PDQ and descriptor searches are the matcher's too.
        searches = image_searches(session, banks, signals, rules)
        if (
            lazy_local_features
            and signals.modality == "image"
            and needs_local_features(session, banks, signals, rules, searches)
        ):
            signals.extra[LOCAL_FEATURES_KIND] = local_features_file(path, options.image)
            featured = True
        findings = find_matches(session, banks, signals, rules, searches)
    return signals, findings, featured


def _init_hash_worker() -> None:
    """A hashing process runs one job at a time beside one per core: OpenCV's and FAISS's
    own thread pools would only add spin-waits."""
    faiss.omp_set_num_threads(1)
    cv2.setNumThreads(1)
