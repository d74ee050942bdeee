"""Crash-proof worker processes for per-item work (hashing files, parsing pages).

One item at a time per worker, so the parent always knows which item a worker holds:

- any exception the item's work raises is that item's error, and the worker goes on;
- each item runs under a budget for its kind (`Budgets`): address space (RLIMIT_AS, set
  above what the worker already maps when the item starts), CPU seconds (RLIMIT_CPU's soft
  limit, whose SIGXCPU becomes an exception) and wall-clock seconds, which the parent
  enforces by killing a worker that runs past them;
- a worker that crashes, is killed (SIGKILL, the OOM killer) or hangs is replaced; the item
  it held comes back as `lost` with the reason, and every other item goes on.

Workers start from a forkserver (never a fork of a parent holding sockets, threads and the
store) and run `initializer` once, where a model is loaded for all the items to come.

`WORKERS = 0` runs items in the calling process: exceptions and the item budgets' parameters
still apply, but a crash or a hang there is the caller's. Tests and one-file calls use it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import resource
import signal
import threading
import time
import tomllib
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field, fields, replace
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from ansim.detector.errors import MediaError

# The reason a lost item's error starts with: the item did not fail by itself, the worker
# holding it did (died, was killed, hung). A later scan retries it up to `max_item_kills`.
WORKER_LOST = "worker lost"
# How long a fresh worker may take to start its first item (imports and model loading).
STARTUP_S = 300.0
# A worker that dies this many times in a row before finishing any item: the pool is broken
# (a missing library, a bad model), not an item.
MAX_STARTUP_FAILURES = 3
# An exception's message is cut to this length in an item's error.
MAX_ERROR_CHARS = 500
SETTINGS_FILE = "settings.toml"
MODALITIES = ("image", "video", "audio", "text", "page")


@dataclass(frozen=True)
class Budgets:
    """What one item may use, by kind. `[budgets]` in `$ANSIM_HOME/settings.toml` changes
    any of them, e.g. `image_max_pixels = 80_000_000` or `wall_s = {video = 900}`."""

    # An image with more pixels is refused before it is decoded (a decompression bomb).
    image_max_pixels: int = 50_000_000
    # A video is decoded for at most this long; what was hashed by then is kept.
    video_decode_s: float = 300.0
    # Address space an item may add to the worker's (bytes).
    memory_bytes: dict[str, int] = field(
        default_factory=lambda: {
            "image": 2 << 30,
            "video": 3 << 30,
            "audio": 2 << 30,
            "text": 1 << 30,
            "page": 1 << 30,
        }
    )
    cpu_s: dict[str, float] = field(
        default_factory=lambda: {
            "image": 60.0,
            "video": 600.0,
            "audio": 300.0,
            "text": 60.0,
            "page": 30.0,
        }
    )
    wall_s: dict[str, float] = field(
        default_factory=lambda: {
            "image": 120.0,
            "video": 420.0,
            "audio": 300.0,
            "text": 60.0,
            "page": 60.0,
        }
    )
    # Before the work says what kind its item is (a sniff, a digest), this wall-clock cap.
    unknown_wall_s: float = 600.0
    # An item whose worker was lost this many times is not tried again.
    max_item_kills: int = 2

    def memory_for(self, kind: str) -> int | None:
        return self.memory_bytes.get(kind)

    def cpu_for(self, kind: str) -> float | None:
        return self.cpu_s.get(kind)

    def wall_for(self, kind: str | None) -> float:
        if kind is None:
            return self.unknown_wall_s
        return self.wall_s.get(kind, self.unknown_wall_s)


def load_budgets(home_root: Path | None) -> Budgets:
    """Budgets with `[budgets]` of `home_root/settings.toml` applied; refused when malformed."""
    path = home_root / SETTINGS_FILE if home_root is not None else None
    if path is None or not path.is_file():
        return Budgets()
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("budgets", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    return budgets_from_table(table, str(path))


def budgets_from_table(table: dict[str, Any], source: str) -> Budgets:
    defaults = Budgets()
    known = {f.name for f in fields(Budgets)}
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise ValueError(
                f"{source}: unknown budget {key!r} (known: {', '.join(sorted(known))})"
            )
        default = getattr(defaults, key)
        if isinstance(default, dict):
            if not isinstance(value, dict) or not all(
                isinstance(v, int | float) and v > 0 for v in value.values()
            ):
                raise ValueError(f"{source}: {key} must be a table of positive numbers by kind")
            unknown_kinds = set(value) - set(MODALITIES)
            if unknown_kinds:
                raise ValueError(f"{source}: {key} has unknown kinds {sorted(unknown_kinds)}")
            changes[key] = {**default, **value}
        elif not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{source}: {key} must be a positive number")
        else:
            changes[key] = type(default)(value)
    return replace(defaults, **changes)


class CpuBudgetExceeded(Exception):
    """Raised in a worker at SIGXCPU: the item used up its CPU seconds."""


class ItemBudget:
    """Handed to the work function with its item: `begin(kind)` applies that kind's budget
    (and tells the parent its wall-clock cap). Within the calling process (`workers=0`) it
    only records the kind."""

    def __init__(self, budgets: Budgets, conn: Connection | None) -> None:
        self.budgets = budgets
        self.kind: str | None = None
        self._conn = conn

    def begin(self, kind: str) -> None:
        self.kind = kind
        if self._conn is None:
            return
        memory = self.budgets.memory_for(kind)
        if memory is not None:
            _set_soft_limit(resource.RLIMIT_AS, _address_space_bytes() + memory)
        cpu = self.budgets.cpu_for(kind)
        if cpu is not None:
            used = resource.getrusage(resource.RUSAGE_SELF)
            _set_soft_limit(resource.RLIMIT_CPU, int(used.ru_utime + used.ru_stime + cpu) + 1)
        self._conn.send(("kind", kind))

    def end(self) -> None:
        if self._conn is None:
            return
        _set_soft_limit(resource.RLIMIT_AS, None)
        _set_soft_limit(resource.RLIMIT_CPU, None)


@dataclass
class Outcome:
    """One item's end: `value` (the work's return), or `error` (it raised), or `lost` (the
    worker holding it died, was killed or hung; the reason)."""

    key: Any
    value: Any = None
    error: str | None = None
    lost: str | None = None
    kind: str | None = None
    seconds: float = 0.0

    @property
    def failure(self) -> str | None:
        if self.lost is not None:
            return f"{WORKER_LOST}: {self.lost}"
        return self.error


Work = Callable[[Any, ItemBudget], Any]


def describe_exception(exc: BaseException, budget: ItemBudget) -> str:
    """An item's error from what its work raised: any exception is the item's, never the run's."""
    kind = budget.kind or "item"
    if isinstance(exc, MediaError):
        return str(exc)
    if isinstance(exc, MemoryError):
        limit = budget.budgets.memory_for(kind)
        within = f" of {limit >> 20:,} MiB" if limit else ""
        return f"{kind} needed more memory than its budget{within}; refused"
    if isinstance(exc, CpuBudgetExceeded):
        return f"{kind} used up its CPU budget of {budget.budgets.cpu_for(kind):g} s; refused"
    message = str(exc).strip().replace("\n", " ")[:MAX_ERROR_CHARS]
    return f"decoder failed on this {kind} ({type(exc).__name__}: {message or 'no message'})"


def run_in_process(
    work: Work, items: Iterable[tuple[Any, Any]], budgets: Budgets = Budgets()
) -> Iterator[Outcome]:
    """The pool's contract without processes: every exception is its item's error."""
    for key, payload in items:
        budget = ItemBudget(budgets, None)
        started = time.monotonic()
        try:
            value = work(payload, budget)
        except Exception as exc:  # any decoder's failure is this item's, not the run's
            yield Outcome(key, error=describe_exception(exc, budget), kind=budget.kind)
        else:
            yield Outcome(key, value, kind=budget.kind, seconds=time.monotonic() - started)


@dataclass
class _Worker:
    process: Any
    conn: Connection
    key: Any = None
    busy: bool = False
    kind: str | None = None
    started: float = 0.0
    deadline: float = 0.0
    initialized: bool = False  # it has started an item: its initializer ran


class WorkerPool:
    """`processes` workers running `work(payload, budget)` for each item, one at a time each.

    `run(items)` yields an `Outcome` per item in order of completion. Use it as a context
    manager (the workers stop on exit), or call `close()`.

    `work` and `initializer` must be module-level functions (they travel to the workers by
    name); `initializer(*initargs)` runs once in each worker before its first item.
    """

    def __init__(
        self,
        work: Work,
        processes: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
        budgets: Budgets = Budgets(),
        on_start: Callable[[Any, int], None] | None = None,
        preload: tuple[str, ...] = (),
    ) -> None:
        if processes < 1:
            raise ValueError("a worker pool needs at least one process")
        self.work = work
        self.processes = processes
        self.initializer = initializer
        self.initargs = initargs
        self.budgets = budgets
        self.on_start = on_start  # (key, worker pid) when a worker starts an item
        self._context = get_context("forkserver")
        if preload:
            # Imported once in the forkserver (if it is not running yet), not in each worker.
            self._context.set_forkserver_preload(list(preload))
        self._workers: list[_Worker] = []
        self._startup_failures = 0
        self.replaced = 0  # workers replaced after a death or a hang

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main,
            args=(child_conn, self.work, self.initializer, self.initargs, self.budgets),
            daemon=True,
            name="ansim-worker",
        )
        process.start()
        child_conn.close()
        worker = _Worker(process, parent_conn)
        self._workers.append(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        self._workers.remove(worker)
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        worker.conn.close()

    def close(self) -> None:
        for worker in list(self._workers):
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        deadline = time.monotonic() + 5
        for worker in list(self._workers):
            worker.process.join(max(0.0, deadline - time.monotonic()))
            self._retire(worker)

    def run(
        self, items: Iterable[tuple[Any, Any]], tick_s: float | None = None
    ) -> Iterator[Outcome | None]:
        """`tick_s`: also yield None whenever that long passed without an item ending, so
        that a caller holding finished items' writes can commit them while it waits."""
        pending = iter(items)
        exhausted = False
        queue: deque[tuple[Any, Any]] = deque()

        def refill() -> None:
            nonlocal exhausted
            while not exhausted and len(queue) < self.processes:
                try:
                    queue.append(next(pending))
                except StopIteration:
                    exhausted = True

        while True:
            # Keep every worker busy while items remain.
            refill()
            self._dispatch(queue)
            if not self._busy_count():
                if exhausted and not queue:
                    return
                continue
            ended: list[Outcome] = []
            try:
                for outcome in self._collect(limit_s=tick_s):
                    ended.append(outcome)
            except WorkerPoolBroken:
                yield from ended  # what finished before the pool broke is still the caller's
                raise
            # The freed workers take their next items before the caller handles these: a
            # worker never waits while the caller records what it returned.
            refill()
            self._dispatch(queue)
            if ended:
                yield from ended
            elif tick_s is not None:
                yield None

    def _dispatch(self, queue: deque[tuple[Any, Any]]) -> None:
        """Start workers as needed and hand each idle one the next queued item."""
        while len(self._workers) < min(self.processes, len(queue) + self._busy_count()):
            self._spawn()
        for worker in self._workers:
            if not worker.busy and queue:
                self._assign(worker, *queue.popleft())

    def _busy_count(self) -> int:
        return sum(1 for w in self._workers if w.busy)

    def _assign(self, worker: _Worker, key: Any, payload: Any) -> None:
        worker.key, worker.busy, worker.kind = key, True, None
        worker.started = time.monotonic()
        startup = 0.0 if worker.initialized else STARTUP_S
        worker.deadline = worker.started + startup + self.budgets.unknown_wall_s
        worker.conn.send((key, payload))

    def _collect(
        self, also: list[Any] | None = None, limit_s: float | None = None
    ) -> Iterator[Outcome]:
        """Wait for a result, a death or a deadline (or one of `also` to be readable, or
        `limit_s` to pass); yield what ended."""
        busy = [w for w in self._workers if w.busy]
        timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic()) if busy else None
        if limit_s is not None:
            timeout = limit_s if timeout is None else min(timeout, limit_s)
        waited = [w.conn for w in busy] + [w.process.sentinel for w in busy] + (also or [])
        ready = wait(waited, timeout)
        for worker in busy:
            if worker.conn in ready or worker.process.sentinel in ready:
                outcome = self._read(worker)  # everything it sent before it ended
                if outcome is not None:
                    yield outcome
                    continue
            if not worker.process.is_alive():
                yield self._lose(worker, _death_reason(worker.process))
            elif time.monotonic() > worker.deadline:
                seconds = self.budgets.wall_for(worker.kind)
                what = worker.kind or "item"
                yield self._lose(worker, f"{what} ran past its wall-clock budget of {seconds:g} s")

    def _read(self, worker: _Worker) -> Outcome | None:
        while worker.conn.poll():
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                return None  # died: the sentinel says how
            tag = message[0]
            if tag == "start":
                worker.initialized = True
                self._startup_failures = 0
                worker.started = time.monotonic()
                worker.deadline = worker.started + self.budgets.unknown_wall_s
                if self.on_start is not None:
                    self.on_start(worker.key, worker.process.pid)
            elif tag == "kind":
                worker.kind = message[1]
                worker.deadline = worker.started + self.budgets.wall_for(worker.kind)
            elif tag == "done":
                _tag, value, error, kind = message
                worker.busy = False
                return Outcome(
                    worker.key, value, error, kind=kind, seconds=time.monotonic() - worker.started
                )
        return None

    def _lose(self, worker: _Worker, reason: str) -> Outcome:
        outcome = Outcome(worker.key, lost=reason, kind=worker.kind)
        if not worker.initialized:
            self._startup_failures += 1
            if self._startup_failures >= MAX_STARTUP_FAILURES:
                self._retire(worker)
                raise WorkerPoolBroken(
                    f"{MAX_STARTUP_FAILURES} workers in a row died before finishing any item "
                    f"(last: {reason})"
                )
        self._retire(worker)
        self.replaced += 1
        return outcome


class WorkerPoolBroken(RuntimeError):
    """Workers cannot start at all: nothing an item did."""


class WorkerLost(RuntimeError):
    """A `CrashProofExecutor` future's worker died, was killed or hung on its call."""


def _call(call: tuple[Callable[..., Any], tuple[Any, ...], str | None], budget: ItemBudget) -> Any:
    function, args, kind = call
    if kind is not None:
        budget.begin(kind)
    return function(*args)


class CrashProofExecutor(Executor):
    """A `concurrent.futures.Executor` over a `WorkerPool`, for asyncio's `run_in_executor`
    (the crawl): `submit(fn, *args)` runs `fn(*args)` in a worker, under the budget of
    `kind` (`submit_kind`), and a call whose worker is lost fails with `WorkerLost` alone
    while the others go on (a ProcessPoolExecutor breaks for every call after one death).

    The exception a call raises comes back as that exception (a MediaError stays one);
    only a lost worker becomes WorkerLost."""

    def __init__(
        self,
        processes: int,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
        budgets: Budgets = Budgets(),
        preload: tuple[str, ...] = (),
    ) -> None:
        self._pool = WorkerPool(
            _call_raising, processes, initializer, initargs, budgets, preload=preload
        )
        self._submitted: queue.SimpleQueue[tuple[Future[Any], Any] | None] = queue.SimpleQueue()
        self._wake_read, self._wake_write = os.pipe()
        self._shutdown = False
        self._thread = threading.Thread(target=self._serve, name="ansim-executor", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if kwargs:
            raise TypeError("CrashProofExecutor.submit takes positional arguments only")
        return self.submit_kind(None, fn, *args)

    def submit_kind(self, kind: str | None, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """`fn(*args)` under the budget of `kind` (image, video, audio, text, page)."""
        if self._shutdown:
            raise RuntimeError("cannot submit after shutdown")
        future: Future[Any] = Future()
        self._submitted.put((future, (fn, args, kind)))
        os.write(self._wake_write, b"x")
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if not self._shutdown:
            self._shutdown = True
            self._submitted.put(None)
            os.write(self._wake_write, b"x")
        if wait:
            self._thread.join()

    def _serve(self) -> None:
        waiting: deque[tuple[Any, Any]] = deque()
        futures: dict[int, Future[Any]] = {}
        closing = False
        try:
            while True:
                while True:
                    try:
                        entry = self._submitted.get_nowait()
                    except queue.Empty:
                        break
                    if entry is None:
                        closing = True
                        continue
                    future, call = entry
                    if future.set_running_or_notify_cancel():
                        futures[id(future)] = future
                        waiting.append((id(future), call))
                self._pool._dispatch(waiting)
                if closing and not waiting and not self._pool._busy_count():
                    break
                for outcome in self._pool._collect(also=[self._wake_read]):
                    _settle(futures.pop(outcome.key), outcome)
                if self._wake_read in wait([self._wake_read], 0):
                    os.read(self._wake_read, 4096)
        except BaseException as exc:  # the pool itself broke: every open call learns why
            for future in futures.values():
                if not future.done():
                    future.set_exception(exc)
            raise
        finally:
            self._pool.close()
            os.close(self._wake_read)
            os.close(self._wake_write)


def _call_raising(
    call: tuple[Callable[..., Any], tuple[Any, ...], str | None], budget: ItemBudget
) -> tuple[bool, Any]:
    """As `_call`, with the exception itself sent back (not only its description)."""
    try:
        return True, _call(call, budget)
    except Exception as exc:  # the caller decides what the exception means
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(describe_exception(exc, budget))
        return False, exc


def _settle(future: Future[Any], outcome: Outcome) -> None:
    if outcome.lost is not None:
        future.set_exception(WorkerLost(outcome.lost))
    elif outcome.error is not None:
        future.set_exception(RuntimeError(outcome.error))
    else:
        ok, value = outcome.value
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _death_reason(process: Any) -> str:
    process.join(1)
    code = process.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the worker was killed by {name} while on this item"
    return f"the worker exited (code {code}) while on this item"


def _worker_main(
    conn: Connection,
    work: Work,
    initializer: Callable[..., None] | None,
    initargs: tuple[Any, ...],
    budgets: Budgets,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGXCPU, _raise_cpu_exceeded)
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        _key, payload = message
        conn.send(("start",))
        budget = ItemBudget(budgets, conn)
        value, error = None, None
        try:
            value = work(payload, budget)
        except Exception as exc:  # any decoder's failure is this item's, not the worker's
            error = describe_exception(exc, budget)
        finally:
            budget.end()
        try:
            conn.send(("done", value, error, budget.kind))
        except Exception as exc:  # a result that does not pickle is still only this item's
            detail = "".join(traceback.format_exception_only(exc)).strip()[:MAX_ERROR_CHARS]
            conn.send(("done", None, f"result could not be returned: {detail}", budget.kind))


def _raise_cpu_exceeded(signum: int, frame: Any) -> None:
    raise CpuBudgetExceeded()


def _set_soft_limit(which: int, soft: int | None) -> None:
    _soft, hard = resource.getrlimit(which)
    value = resource.RLIM_INFINITY if soft is None else soft
    if hard != resource.RLIM_INFINITY and (soft is None or soft > hard):
        value = hard
    resource.setrlimit(which, (value, hard))


def _address_space_bytes() -> int:
    """This process's mapped address space now (what RLIMIT_AS counts)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
