"""Hashing on a Ray cluster (`ansim scan --engine ray [--address HOST:PORT]`): the same
contract as `file_hashing.hash_paths` (an `Outcome` per file in order of completion, any
decoder exception the file's error), with Ray actors as the workers.

Ray is an optional extra (`pip install -e '.[cluster]'`). Without `--address` a local Ray
starts in this process (`ray.init()`); with one, the scan joins that cluster. Each actor
loads the hashing stack and the descriptor model once (its constructor is the pool's
initializer) and hashes one file at a time. The files' bytes travel to the actors, so the
scanned folder need not be on the other machines; the store stays with the driver, which
records each result as it comes back, exactly as the local engine does.

An actor that dies mid-file (its node lost, its process killed) loses that file alone: it
comes back `lost` like a file whose local worker died, and a new actor takes its place.

`ansim crawl run --engine ray` (`RayCrawlWorkers`): the crawl's hashing, matching and page
parsing on actors the same way; fetching, the frontier and every store write stay with
the driver, so a node lost mid-crawl costs only the calls its actors held, tried again on
other actors.

A crawl's actors match against the reference banks of a replica on their own node, never
the driver's home (which another machine does not have, or has as another home): a
folder per store under the node's `index_cache_dir` (`ANSIM_INDEX_CACHE_DIR` in the
environment `ray start` ran with), built from the store when first opened and caught up
by checkpoint at every use (`Banks(follow_store=True)`). The store is the only thing the
nodes share; only the driver's processes write the home's banks and the crawl history.
The actors need no data key: sealing evidence is the driver's. Nor do they get the store's
password: the calls carry its URL without one (`home_for_nodes`), and each node's actors
authenticate from the environment its `ray start` ran with (`PGPASSWORD`, or a
`PGPASSFILE`/`~/.pgpass`, as libpq reads them), so the secret never sits in Ray's task
arguments or object store. A local Ray (no `--address`) is started with it in its
environment.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import pickle
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from ansim.detector.errors import MediaError
from ansim.detector.hashing import HashOptions
from ansim.pipeline.file_hashing import budgeted_options, hash_work, init_hash_worker
from ansim.pipeline.workers import (
    Budgets,
    ItemBudget,
    Outcome,
    WorkerLost,
    describe_exception,
    run_in_process,
)
from ansim.settings import Settings
from ansim.store.home import Home
from ansim.store.private_files import private_dir
from sqlalchemy.engine import URL, make_url

# How long a replacement actor may take to start (imports, the model) and find room on the
# cluster; a node gone for good leaves fewer actors rather than calls waiting forever.
READY_TIMEOUT_S = 300.0
log = logging.getLogger("ansim.crawl")
# The largest file sent to an actor as bytes (through Ray's object store); a larger one is
# refused on this engine rather than copied whole into cluster memory.
MAX_SHIPPED_BYTES = 512 << 20


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached."""


class FileHasher:
    """One Ray actor: the hashing stack loaded once, then one file at a time."""

    def __init__(self, options: HashOptions) -> None:
        _clear_dead_actors_bodies()
        init_hash_worker(options)
        self.options = options

    def ready(self) -> bool:
        """Answered once the constructor (the model's loading) is done."""
        return True

    def hash(self, name: str, data: bytes, budgets: Budgets) -> tuple[Any, str | None]:
        with _body_file(name, data) as path:
            [outcome] = run_in_process(hash_work, [(path, (path, self.options))], budgets)
        return outcome.value, outcome.error


def home_for_nodes(home: Home) -> Home:
    """The home as a crawl's calls carry it to the actors: its store's URL without the
    password (the nodes bring their own)."""
    if make_url(home.db_url).password is None:
        return home
    return replace(home, db_url=url_without_password(home.db_url))


def url_without_password(db_url: str) -> str:
    url = make_url(db_url)
    bare = URL.create(
        url.drivername, url.username, None, url.host, url.port, url.database, url.query
    )
    return bare.render_as_string(hide_password=False)


def password_of(home: Home) -> str | None:
    return make_url(home.db_url).password


def connect(address: str | None, store_password: str | None = None) -> Any:
    """Join the cluster at `address`, or start a local Ray: with `store_password` in its
    environment (libpq's `PGPASSWORD`, unless one is set), as a node would have it."""
    if not ray_available():
        raise RayUnavailable("the ray engine needs Ray: pip install -e '.[cluster]'")
    import ray

    if not ray.is_initialized():
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                if store_password is not None:
                    os.environ.setdefault("PGPASSWORD", store_password)
                ray.init(log_to_driver=False, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {exc}") from exc
        _cluster_messages_to_stderr()
    return ray


def _cluster_messages_to_stderr() -> None:
    """Ray prints the cluster's error messages (e.g. a node marked dead) on the driver's
    stdout, where a command's `--json` result goes: they go to stderr instead."""
    from ray._private import worker

    printing = getattr(worker, "print_to_stdstream", None)
    if printing is None or getattr(printing, "to_stderr", False):
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        printing({**data, "is_err": True}, ignore_prefix)

    to_stderr.to_stderr = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_stderr


def ray_hash_paths(
    paths: list[Path],
    options: HashOptions,
    budgets: Budgets = Budgets(),
    address: str | None = None,
    actors: int | None = None,
    on_start: Callable[[Path, Any], None] | None = None,
) -> Iterator[Outcome]:
    """An `Outcome` per path, hashed by actors across the cluster, in order of completion.
    `on_start(path, actor)` is called as each file is handed to its actor.

    A file whose actor is lost is tried again on another, until it has cost
    `budgets.max_item_kills` actors (then it comes back `lost`); each lost actor is replaced
    when the cluster has room for it within `READY_TIMEOUT_S` (a node gone for good leaves
    fewer actors, not a scan waiting forever)."""
    ray = connect(address)
    from ray.exceptions import RayActorError, RayTaskError, WorkerCrashedError

    hasher_class = ray.remote(num_cpus=1, max_restarts=0)(FileHasher)
    job_options = budgeted_options(options, budgets)
    count = max(1, min(actors or int(ray.cluster_resources().get("CPU", 1)), len(paths)))
    idle = deque(hasher_class.remote(job_options) for _ in range(count))
    starting: dict[Any, tuple[Any, float]] = {}  # ready() call -> (actor, deadline)
    queue = deque(paths)
    running: dict[Any, tuple[Path, Any]] = {}
    losses: Counter[Path] = Counter()
    while queue or running:
        while queue and idle:
            path = queue.popleft()
            try:
                size = path.stat().st_size
                if size > MAX_SHIPPED_BYTES:
                    yield Outcome(path, error=f"file is {size:,} bytes, too large to ship")
                    continue
                data = path.read_bytes()
            except OSError:
                # The local hasher says why (vanished, unreadable, a directory).
                yield from run_in_process(hash_work, [(path, (path, job_options))], budgets)
                continue
            actor = idle.popleft()
            running[actor.hash.remote(path.name, data, budgets)] = (path, actor)
            if on_start is not None:
                on_start(path, actor)
        if not running and not starting:
            while queue:  # no actor left, none starting: the cluster is gone
                yield Outcome(queue.popleft(), lost="no Ray actor is left to hash it")
            continue
        timeout = (
            max(0.0, min(deadline for _, deadline in starting.values()) - time.monotonic())
            if starting
            else None
        )
        ready, _ = ray.wait([*running, *starting], num_returns=1, timeout=timeout)
        for call, (actor, deadline) in list(starting.items()):
            if call not in ready and time.monotonic() > deadline:
                del starting[call]  # no room for it on the cluster now
                ray.kill(actor, no_restart=True)
        for done in ready:
            if done in starting:
                actor, _deadline = starting.pop(done)
                try:
                    ray.get(done)
                    idle.append(actor)
                except (RayActorError, WorkerCrashedError):
                    pass
                continue
            path, actor = running.pop(done)
            try:
                value, error = ray.get(done)
            except (RayActorError, WorkerCrashedError) as exc:
                losses[path] += 1
                if losses[path] < budgets.max_item_kills:
                    queue.appendleft(path)
                else:
                    yield Outcome(path, lost=f"the Ray actors holding it were lost ({_why(exc)})")
                replacement = hasher_class.remote(job_options)
                starting[replacement.ready.remote()] = (
                    replacement,
                    time.monotonic() + READY_TIMEOUT_S,
                )
                continue
            except RayTaskError as exc:  # an exception outside the per-item guard
                yield Outcome(path, error=f"hashing failed on the cluster: {type(exc).__name__}")
                idle.append(actor)
                continue
            idle.append(actor)
            yield Outcome(path, value, error)


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "died"


class CrawlHasher:
    """One Ray actor of a crawl: fetched files hashed and matched against the home's store
    and reference banks (opened once, as a local crawl worker opens them), pages parsed.
    The files' bytes travel to the actor; the store must be reachable from its node (the
    cluster's PostgreSQL) and the home's index folder readable there."""

    def __init__(self, options: HashOptions) -> None:
        _clear_dead_actors_bodies()
        init_hash_worker(options)
        self.index_cache_dir = Settings.from_environment().index_cache_dir
        self._replicas_opened: set[Any] = set()

    def ready(self) -> bool:
        return True

    def fingerprint(
        self,
        name: str,
        data: bytes,
        kind: str | None,
        budgets: Budgets,
        job: tuple[Any, ...],
    ) -> tuple[bool, Any]:
        """(True, fingerprint) or (False, the exception the hashing raised)."""
        with _body_file(name, data) as path:
            return _guarded(kind, budgets, self._fingerprint_on_replica, path, *job)

    def _fingerprint_on_replica(self, path: Path, *job: Any) -> Any:
        from ansim.pipeline.crawl.hashing import fingerprint_and_match, use_replica_banks

        home = job[1]
        if home not in self._replicas_opened:
            use_replica_banks(home, replica_dir(self.index_cache_dir, home.db_url))
            self._replicas_opened.add(home)
        return fingerprint_and_match(path, *job)

    def parse_page(self, data: bytes, url: str, budgets: Budgets) -> tuple[bool, Any]:
        from ansim.pipeline.crawl.hashing import parse_page_file

        with _body_file("page.html", data) as path:
            return _guarded("page", budgets, parse_page_file, path, url)


def replica_dir(cache_dir: Path, db_url: str) -> Path:
    """This node's folder (0700: reference hashes) for the replica of one store's banks,
    named by a digest of the store's URL without its password (which the driver's URL
    has and the actors' does not)."""
    shown = url_without_password(db_url)
    return private_dir(cache_dir / hashlib.sha256(shown.encode()).hexdigest()[:16])


# Shipped bodies wait here (0700) while an actor works on them, named by the actor's pid:
# an actor killed mid-item cannot delete its file, so every actor that starts on a node
# deletes the files of actors that are gone.
SCRATCH_DIR = Path(tempfile.gettempdir()) / "ansim-ray"


def _clear_dead_actors_bodies() -> None:
    SCRATCH_DIR.mkdir(mode=0o700, exist_ok=True)
    for leftover in SCRATCH_DIR.iterdir():
        pid = leftover.name.split("-", 1)[0]
        if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
            leftover.unlink(missing_ok=True)


@contextmanager
def _body_file(name: str, data: bytes) -> Iterator[Path]:
    """A shipped body in a private file for the length of one call."""
    with tempfile.NamedTemporaryFile(
        prefix=f"{os.getpid()}-", suffix=Path(name).suffix[:16], dir=SCRATCH_DIR
    ) as body:
        body.write(data)
        body.flush()
        yield Path(body.name)


def _guarded(
    kind: str | None, budgets: Budgets, function: Callable[..., Any], *args: Any
) -> tuple[bool, Any]:
    """`function(*args)` in the actor: its exception comes back as a value (a MediaError
    stays one), so only the actor's own loss reaches the driver as Ray's error."""
    budget = ItemBudget(budgets, None)
    try:
        if kind is not None:
            budget.begin(kind)
        return True, function(*args)
    except Exception as exc:  # the item's failure, decided by the caller
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(describe_exception(exc, budget))
        return False, exc


class RayCrawlWorkers:
    """The crawl's workers as Ray actors (`ansim crawl run --engine ray`): one per CPU of
    the cluster unless `actors` is given, each taking one call at a time.

    A call whose actor is lost (its node died, its process was killed) is tried again on
    another actor, up to `budgets.max_item_kills` actors for one call: a node going away is
    not the item's fault, and the crawl should not lose the URL to it. When that many
    actors were lost on one call, it fails with `WorkerLost`, exactly as a local worker's
    loss. A lost actor is replaced once the cluster has room for it (within
    `READY_TIMEOUT_S`); a node gone for good leaves fewer actors."""

    def __init__(
        self,
        home: Home,
        plan: Any,
        budgets: Budgets,
        address: str | None = None,
        actors: int | None = None,
    ) -> None:
        self.ray = connect(address, password_of(home) if address is None else None)
        self.home = home_for_nodes(home)
        self.plan = plan
        self.budgets = budgets
        self.options = budgeted_options(plan.hash_options, budgets)
        self._actor_class = self.ray.remote(num_cpus=1, max_restarts=0)(CrawlHasher)
        count = max(1, actors or int(self.ray.cluster_resources().get("CPU", 1)))
        self._actors = [self._actor_class.remote(plan.hash_options) for _ in range(count)]
        # Created on first use: the queue belongs to the crawl's event loop.
        self._idle: asyncio.Queue[Any] | None = None
        self._starting: set[asyncio.Task[None]] = set()
        self.lost_actors = 0

    def __enter__(self) -> RayCrawlWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        for actor in self._actors:
            self.ray.kill(actor, no_restart=True)
        self._actors = []

    def _idle_actors(self) -> asyncio.Queue[Any]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for actor in self._actors:
                self._idle.put_nowait(actor)
        return self._idle

    async def _call(self, method: str, *args: Any) -> Any:
        from ray.exceptions import RayActorError, WorkerCrashedError

        idle = self._idle_actors()
        reason = ""
        for _attempt in range(self.budgets.max_item_kills):
            if not self._actors and not self._starting:
                raise WorkerLost("no Ray actor is left on the cluster")
            actor = await idle.get()
            if actor is None:  # the last replacement found no room: wake the next caller too
                idle.put_nowait(None)
                continue
            try:
                ok, value = await getattr(actor, method).remote(*args)
            except (RayActorError, WorkerCrashedError) as exc:
                reason = _why(exc)
                self._lost(actor, reason)
                continue
            idle.put_nowait(actor)
            if ok:
                return value
            raise value
        raise WorkerLost(f"the Ray actors holding it were lost ({reason})")

    def _lost(self, actor: Any, reason: str) -> None:
        self.lost_actors += 1
        log.warning("a Ray actor was lost (%s); its call goes to another actor", reason)
        self._actors.remove(actor)
        task = asyncio.get_running_loop().create_task(self._replace())
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _replace(self) -> None:
        from ray.exceptions import RayActorError

        actor = self._actor_class.remote(self.plan.hash_options)
        try:
            await asyncio.wait_for(_awaited(actor.ready.remote()), READY_TIMEOUT_S)
        except (TimeoutError, RayActorError):
            self.ray.kill(actor, no_restart=True)
            log.warning("no room on the cluster for a replacement actor: one actor fewer")
            if not self._actors and len(self._starting) <= 1:
                self._idle_actors().put_nowait(None)  # callers waiting for an actor give up
            return
        self._actors.append(actor)
        self._idle_actors().put_nowait(actor)

    async def fingerprint(self, path: Path) -> Any:
        from ansim.pipeline.crawl.hashing import file_kind

        job = (self.options, self.home, self.plan.rules, self.plan.lazy_local_features)
        data = _shipped(path)
        return await self._call("fingerprint", path.name, data, file_kind(path), self.budgets, job)

    async def parse_page(self, path: Path, url: str) -> Any:
        return await self._call("parse_page", _shipped(path), url, self.budgets)


async def _awaited(reference: Any) -> Any:
    return await reference


def _shipped(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_SHIPPED_BYTES:
        raise MediaError(f"file is {size:,} bytes, too large to ship to the cluster")
    return path.read_bytes()
