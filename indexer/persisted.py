"""An index kept in a file: loaded lazily, reloaded when another process changed it,
and changed only under an exclusive file lock with an atomic replace.

Any index class with `save(path)` and a `load(path)` classmethod can be kept this way.
The file is a cache: the store is the source of truth and `rebuild` recreates it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
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

    def read(self) -> IndexT:
        """The current index, for queries (no lock: files are only ever replaced whole)."""
        return self._fresh()

    @contextmanager
    def write(self) -> Iterator[IndexT]:
        """Change the index; it is saved atomically when the block ends without error."""
        with self._locked():
            index = self._fresh()
            try:
                yield index
            except BaseException:
                self._index = None  # half-changed in memory; reload from disk next time
                raise
            self._save(index)

    def replace(self, index: IndexT) -> None:
        """Swap in a freshly built index (rebuild)."""
        with self._locked():
            self._save(index)
            self._index = index

    def _save(self, index: IndexT) -> None:
        temporary = self.path.with_suffix(self.path.suffix + f".tmp{os.getpid()}")
        index.save(temporary)
        os.replace(temporary, self.path)
        self._stamp = self._disk_stamp()
