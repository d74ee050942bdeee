"""The hashing workers: fingerprint fetched files, match them, and parse fetched pages.

Matching (index searches, image verification) is most of a crawl's CPU, so each worker
also matches what it hashed, against its own store handle and reference banks, opened
once per worker process (`_matching_banks`) and reloaded by the banks themselves when a
reference is added during the crawl. Pages are parsed in the workers too: a hostile page
costs a worker's budget, never the crawl's event loop.

The workers are crash-proof (`pipeline.workers.CrashProofExecutor`, started by forkserver:
a crawl process holds sockets, threads and the store, and is never forked): each call runs
under its kind's budget, and a worker that dies, is killed or hangs fails its own call with
`WorkerLost` while every other call goes on. `--engine ray` runs the same calls on Ray
actors (`pipeline.ray_engine.RayCrawlWorkers`).
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from ansim.crawler.extract import PageContent, extract_page
from ansim.detector.decision import MatchRules
from ansim.detector.descriptor import load_descriptor_model
from ansim.detector.hashing import HashOptions
from ansim.detector.image_robust import (
    COARSE_LOCAL_FEATURES_OPTION,
    LOCAL_FEATURES_OPTION,
    descriptor_available,
    local_features_file,
)
from ansim.detector.local_verify import SIGNAL_KIND as LOCAL_FEATURES_KIND
from ansim.detector.signals import MediaSignals
from ansim.detector.sniff import sniff_file
from ansim.pipeline.banks import Banks
from ansim.pipeline.file_hashing import budgeted_options, hashing_modules, init_hash_worker
from ansim.pipeline.matching import Finding, find_matches, image_searches, needs_local_features
from ansim.pipeline.workers import WORKER_LOST, Budgets, CrashProofExecutor, default_workers
from ansim.signal_types.hashing import hash_file
from ansim.store.db import Store
from ansim.store.home import Home

Fingerprint = tuple[MediaSignals, list[Finding], bool]
# A frontier row whose worker was lost: `worker lost (1 of at most 2): <reason>`.
_LOST_COUNT = re.compile(rf"^{WORKER_LOST} \((\d+) of at most \d+\)")


def lost_error(losses: int, most: int, reason: str) -> str:
    """A URL's error when hashing or parsing it has now cost `losses` workers."""
    return f"{WORKER_LOST} ({losses} of at most {most}): {reason}"


def losses_in(error: str | None) -> int:
    """How many workers a URL's recorded error says it cost (0 for any other error)."""
    found = _LOST_COUNT.match(error or "")
    return int(found.group(1)) if found else 0


@dataclass(frozen=True)
class HashingPlan:
    """How crawled files are hashed and matched, from the crawl's image verification mode.

    Triage, with a descriptor to find candidates: an image's ORB features (most of its
    hashing CPU) are computed only when a candidate is left to verify, and only PDQ's and
    the descriptor's candidates with evidence are verified (see
    `ansim.signal_types.orb.needs_local_features` for what that gives up). Without
    a descriptor, triage is "all": local features are then the only robust evidence.

    In every mode a crawled image's ORB features leave out the half-size keypoints: the
    history never stores them, so they are only ever the query side of a verification
    (`local_verify.extract_local_features`)."""

    hash_options: HashOptions
    rules: MatchRules
    lazy_local_features: bool

    @classmethod
    def for_verification(cls, mode: str, max_file_bytes: int) -> HashingPlan:
        robust_here = descriptor_available()
        if robust_here:
            load_descriptor_model()  # unusable weights stop the crawl before it starts
        features_up_front = mode == "all" or (mode == "triage" and not robust_here)
        extra = {COARSE_LOCAL_FEATURES_OPTION: False}
        if not features_up_front:
            extra[LOCAL_FEATURES_OPTION] = False
        return cls(
            hash_options=HashOptions(max_file_bytes=max_file_bytes, extra=extra),
            rules=MatchRules(image_triage=not features_up_front),
            lazy_local_features=mode == "triage" and robust_here,
        )


class CrawlWorkers(Protocol):
    """What the crawl loop asks of its workers, whichever engine runs them."""

    def __enter__(self) -> CrawlWorkers: ...

    def __exit__(self, *exc: object) -> None: ...

    async def fingerprint(self, path: Path) -> Fingerprint: ...

    async def parse_page(self, path: Path, url: str) -> PageContent: ...


class HashingWorkers:
    """`processes` crash-proof worker processes (0: one per CPU; 1: one thread in this
    process, no start-up cost and no isolation, for small scans and tests). Use as a
    context manager: leaving it stops the workers and closes this process's matching store.
    """

    def __init__(
        self, home: Home, plan: HashingPlan, processes: int, budgets: Budgets = Budgets()
    ) -> None:
        self.home = home
        self.plan = plan
        self.budgets = budgets
        self.options = budgeted_options(plan.hash_options, budgets)
        processes = processes or default_workers()
        # Both pools start their workers on the first call, not here.
        self.pool: Executor = (
            ThreadPoolExecutor(1)
            if processes == 1
            else CrashProofExecutor(
                processes,
                initializer=init_hash_worker,
                initargs=(plan.hash_options,),
                budgets=budgets,
                preload=hashing_modules(plan.hash_options),
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

    async def _call(self, kind: str | None, function: Any, *args: Any) -> Any:
        if isinstance(self.pool, CrashProofExecutor):
            return await asyncio.wrap_future(self.pool.submit_kind(kind, function, *args))
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)

    async def fingerprint(self, path: Path) -> Fingerprint:
        """A file's signals, the references they match, and whether ORB features were
        computed on demand for it; under the budget of its kind (sniffed here: a read of
        its first bytes). Raises WorkerLost when the worker holding it was lost."""
        return await self._call(
            file_kind(path),
            fingerprint_and_match,
            path,
            self.options,
            self.home,
            self.plan.rules,
            self.plan.lazy_local_features,
        )

    async def parse_page(self, path: Path, url: str) -> PageContent:
        """A fetched page's links, media and text, parsed under the page budget (raises
        PageRefused for a page not worth parsing, WorkerLost when its worker was lost)."""
        return await self._call("page", parse_page_file, path, url)


def crawl_workers(
    home: Home,
    plan: HashingPlan,
    budgets: Budgets,
    processes: int,
    engine: str = "local",
    address: str | None = None,
) -> CrawlWorkers:
    """The crawl's workers: local crash-proof processes, or actors on a Ray cluster (at
    `address`, or a local Ray started here); `processes` 0 means one per CPU there."""
    if engine == "ray":
        from ansim.pipeline.ray_engine import RayCrawlWorkers

        return RayCrawlWorkers(home, plan, budgets, address, processes or None)
    return HashingWorkers(home, plan, processes, budgets)


def file_kind(path: Path) -> str | None:
    """The budget a file is hashed under: its sniffed modality (None: the unknown cap)."""
    try:
        return sniff_file(path).modality
    except OSError:
        return None


def parse_page_file(path: Path, url: str) -> PageContent:
    """In a worker: a fetched page's content (the depth pre-check and caps apply first)."""
    return extract_page(path.read_bytes(), url)


# Per hashing worker: the store and reference banks it matches against (opened once).
_matching_banks: dict[Home, tuple[Store, Banks]] = {}


def use_replica_banks(home: Home, index_dir: Path) -> None:
    """Match `home`'s crawl in this process against replica banks in `index_dir` (a Ray
    node's own folder) instead of the home's index folder, which may not exist here: they
    follow the store's checkpoint at every use, since no other process writes them, and
    are all brought level with it here."""
    if home not in _matching_banks:
        store, banks = Store(home.db_url), Banks(index_dir, follow_store=True)
        with store.read_session() as session:
            banks.bring_level(session)  # what a purge left in the files goes now
        _matching_banks[home] = (store, banks)


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
            signals.extra[LOCAL_FEATURES_KIND] = local_features_file(
                path, options.image, options.extra.get(COARSE_LOCAL_FEATURES_OPTION, True)
            )
            featured = True
        findings = find_matches(session, banks, signals, rules, searches)
    return signals, findings, featured
