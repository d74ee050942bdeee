"""An index kept in a file: loaded lazily, reloaded when another process changed it,
and changed only under an exclusive file lock with an atomic replace.

Any index class with `save(path)` and a `load(path)` classmethod can be kept this way.
The file is a cache: the store is the source of truth and `rebuild` recreates it. Beside
it, a checkpoint file records the last entry id ever added: with the entry count, it tells
a reader whether the index has everything the store holds (ids only grow), so a missed
add is found even where a missed removal would leave the count equal.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, Protocol, TypeVar


class Saveable(Protocol):
    def save(self, path: Path) -> None: ...

    def __len__(self) -> int: ...


IndexT = TypeVar("IndexT", bound=Saveable)


class PersistedIndex(Generic[IndexT]):
    def __init__(
        self,
        path: Path,
        load: Callable[[Path], IndexT],
        create: Callable[[], IndexT],
    ) -> None:
        self.path = path
        self._load = load
        self._create = create
        self._index: IndexT | None = None
        self._stamp: tuple[int, int] | None = None

    def _disk_stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def _fresh(self) -> IndexT:
        stamp = self._disk_stamp()
        if self._index is None or stamp != self._stamp:
            self._index = self._load(self.path) if stamp is not None else self._create()
            self._stamp = stamp
        return self._index

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(self.path.suffix + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def exists(self) -> bool:
        return self.path.exists()

    @property
    def checkpoint_path(self) -> Path:
        return self.path.with_suffix(self.path.suffix + ".checkpoint")

    def last_id(self) -> int | None:
        """The last entry id ever added, or None when unknown (no or unreadable checkpoint)."""
        try:
            return int(json.loads(self.checkpoint_path.read_text())["last_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save_last_id(self, last_id: int) -> None:
        temporary = self.checkpoint_path.with_suffix(f".tmp{os.getpid()}")
        temporary.write_text(json.dumps({"last_id": last_id}))
        os.replace(temporary, self.checkpoint_path)

    def read(self) -> IndexT:
        """The current index, for queries (no lock: files are only ever replaced whole)."""
        return self._fresh()

    @contextmanager
    def write(self, added_ids: Iterable[int] = ()) -> Iterator[IndexT]:
        """Change the index; it is saved atomically when the block ends without error. The
        checkpoint follows the index (a crash in between leaves it behind: a rebuild)."""
        with self._locked():
            index = self._fresh()
            try:
                yield index
            except BaseException:
                self._index = None  # half-changed in memory; reload from disk next time
                raise
            self._save(index)
            added = max(added_ids, default=None)
            if added is not None:
                self._save_last_id(max(added, self.last_id() or 0))

    def replace(self, index: IndexT, last_id: int = 0) -> None:
        """Swap in a freshly built index (rebuild) holding entries up to `last_id`."""
        with self._locked():
            self._save(index)
            self._save_last_id(last_id)
            self._index = index

    def _save(self, index: IndexT) -> None:
        temporary = self.path.with_suffix(self.path.suffix + f".tmp{os.getpid()}")
        index.save(temporary)
        os.replace(temporary, self.path)
        self._stamp = self._disk_stamp()
