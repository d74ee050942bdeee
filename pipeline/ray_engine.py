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
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ansim.detector.hashing import HashOptions
from ansim.pipeline.file_hashing import budgeted_options, hash_work, init_hash_worker
from ansim.pipeline.workers import Budgets, Outcome, run_in_process

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
        init_hash_worker(options)
        self.options = options

    def hash(self, name: str, data: bytes, budgets: Budgets) -> tuple[Any, str | None]:
        suffix = Path(name).suffix[:16]
        with tempfile.NamedTemporaryFile(prefix="ansim-ray-", suffix=suffix) as body:
            body.write(data)
            body.flush()
            path = Path(body.name)
            [outcome] = run_in_process(hash_work, [(path, (path, self.options))], budgets)
        return outcome.value, outcome.error


def connect(address: str | None) -> Any:
    if not ray_available():
        raise RayUnavailable("the ray engine needs Ray: pip install -e '.[cluster]'")
    import ray

    if not ray.is_initialized():
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(log_to_driver=False, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {exc}") from exc
    return ray


def ray_hash_paths(
    paths: list[Path],
    options: HashOptions,
    budgets: Budgets = Budgets(),
    address: str | None = None,
    actors: int | None = None,
    on_start: Callable[[Path, Any], None] | None = None,
) -> Iterator[Outcome]:
    """An `Outcome` per path, hashed by actors across the cluster, in order of completion.
    `on_start(path, actor)` is called as each file is handed to its actor."""
    ray = connect(address)
    from ray.exceptions import RayActorError, RayTaskError, WorkerCrashedError

    hasher_class = ray.remote(num_cpus=1, max_restarts=0)(FileHasher)
    job_options = budgeted_options(options, budgets)
    count = max(1, min(actors or int(ray.cluster_resources().get("CPU", 1)), len(paths)))
    idle = deque(hasher_class.remote(job_options) for _ in range(count))
    queue = deque(paths)
    running: dict[Any, tuple[Path, Any]] = {}
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
        if not running:
            continue
        [done], _ = ray.wait(list(running), num_returns=1)
        path, actor = running.pop(done)
        try:
            value, error = ray.get(done)
        except (RayActorError, WorkerCrashedError) as exc:
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "died"
            yield Outcome(path, lost=f"the Ray actor holding it was lost ({reason})")
            idle.append(hasher_class.remote(job_options))
            continue
        except RayTaskError as exc:  # an exception outside the per-item guard
            yield Outcome(path, error=f"hashing failed on the cluster: {type(exc).__name__}")
            idle.append(actor)
            continue
        idle.append(actor)
        yield Outcome(path, value, error)
