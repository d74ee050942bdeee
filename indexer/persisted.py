"""An index kept in files: a base plus small delta segments, published by a manifest.

The file at `path` is a small JSON manifest naming a base file (the whole index, as its
class's `save` writes it), the delta segments written since (each one write's adds and
removals, for index classes that can record their changes, see `Segmentable`), and the
checkpoint those files cover: the last entry id ever added and the entry count. Every
file is written under a temporary name, fsynced and renamed; the manifest is replaced
last, so a crash at any point leaves the previous manifest, whose files are all whole.
Files that no manifest names (a crash's leftovers, what a compaction replaced) are
deleted at the next compaction.

A write appends one segment: bytes in proportion to the change, not to the index. When
the segments hold more than `COMPACT_FRACTION` of the base's entries (or there are
`MAX_SEGMENTS` of them), the write saves the whole index as a new base instead
(compaction): each entry is rewritten a bounded number of times, so the writes stay in
proportion to the changes. Index classes without change recording are saved whole at
every write, as before.

Readers take no lock: a changed manifest is noticed by its stamp, and when it only
appends segments to the base already in memory, just those are applied (another
process's add costs a reader the add, not a reload). Writers hold an exclusive flock.

The files are a cache: the store is the source of truth. With the checkpoint a reader
can tell whether the index has everything the store holds (ids only grow): entries newer
than the checkpoint are read from the store, and a count that still disagrees means a
rebuild (`pipeline.banks`). A bank written before manifests existed (the index file
itself at `path`, its checkpoint in `path.checkpoint`) opens as it was and becomes a
manifest at its first compaction.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Generic, Protocol, TypeVar, runtime_checkable

# How a manifest starts (anything else at the path is a whole index file from before).
MANIFEST_MAGIC = b'{"manifest"'
# Segments may hold changes up to this share of the base's entries before a compaction,
COMPACT_FRACTION = 0.25
# ...and at least this many (a small bank is not rewritten at every change),
SEGMENT_FLOOR = 4096
# ...in at most this many segment files (each is a file to open when the index loads):
# past it they are merged into one (bytes in proportion to the segments, not the base).
MAX_SEGMENTS = 64
# A reader that finds a file gone (compacted away meanwhile) reads the manifest again.
OPEN_ATTEMPTS = 5


class Saveable(Protocol):
    def save(self, path: Path) -> None: ...

    def __len__(self) -> int: ...


@runtime_checkable
class Segmentable(Protocol):
    """An index that can record what a write changed and keep it as a delta segment."""

    def record_changes(self) -> None:
        """Start recording adds and removals (the start of a write)."""

    def recorded_changes(self) -> int:
        """Entries added plus ids removed since `record_changes`."""

    def save_changes(self, path: Path) -> None:
        """Write the recorded changes to `path` and stop recording."""

    def stop_recording(self) -> None: ...

    def apply_changes(self, path: Path) -> None:
        """Apply a segment that `save_changes` wrote."""

    @staticmethod
    def merge_changes(sources: list[Path], target: Path) -> int:
        """Write several segments as one; returns the entries added + removed in it."""


IndexT = TypeVar("IndexT", bound=Saveable)


@dataclass(frozen=True)
class Manifest:
    """What the files at a path hold: a base, segments on top of it, and the checkpoint."""

    base: str | None  # file name beside the manifest; None: the empty index
    segments: tuple[str, ...] = ()
    last_id: int = 0  # the last entry id ever added (0: none, or unknown for a legacy file)
    count: int | None = None  # entries held (None: unknown, a legacy file)
    generation: int = 0  # bumped by each compaction; names the base and its segments
    base_entries: int = 0
    segment_changes: int = 0  # entries added + removed in the segments
    next_segment: int = 0
    # The segments that the first one replaced when they were merged (see `_open`).
    merged_from: tuple[str, ...] = ()

    def file_names(self) -> list[str]:
        return ([self.base] if self.base else []) + list(self.segments)

    def to_json(self) -> bytes:
        return json.dumps({"manifest": 1, **asdict(self)}).encode()

    @classmethod
    def from_json(cls, text: bytes) -> Manifest:
        data = json.loads(text)
        data.pop("manifest")
        data["segments"] = tuple(data["segments"])
        data["merged_from"] = tuple(data.get("merged_from", ()))
        return cls(**data)


def fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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
        self._manifest: Manifest | None = None  # what self._index holds
        self._stamp: tuple[int, int, int] | None = None

    # -- reading -------------------------------------------------------------------------

    def _disk_stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _legacy_checkpoint(self) -> int:
        try:
            checkpoint = self.path.with_suffix(self.path.suffix + ".checkpoint")
            return int(json.loads(checkpoint.read_text())["last_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def manifest(self) -> Manifest | None:
        """The published manifest (None: no index at all)."""
        try:
            with open(self.path, "rb") as source:
                head = source.read(len(MANIFEST_MAGIC))
                if head != MANIFEST_MAGIC:
                    # A whole index file from before manifests: its own base.
                    return Manifest(base=self.path.name, last_id=self._legacy_checkpoint())
                text = head + source.read()
        except FileNotFoundError:
            return None
        try:
            return Manifest.from_json(text)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{self.path} is not a readable index manifest") from exc

    def _fresh(self) -> IndexT:
        stamp = self._disk_stamp()
        if self._index is not None and stamp == self._stamp:
            return self._index
        for attempt in range(OPEN_ATTEMPTS):
            manifest = self.manifest() or Manifest(base=None)
            try:
                self._index = self._open(manifest)
                break
            except FileNotFoundError:
                # A compaction removed a file the manifest read above named.
                self._index = self._manifest = None
                if attempt == OPEN_ATTEMPTS - 1:
                    raise
                stamp = self._disk_stamp()
            except BaseException:
                self._index = self._manifest = None  # maybe half-applied
                raise
        self._manifest, self._stamp = manifest, stamp
        return self._index

    def _open(self, manifest: Manifest) -> IndexT:
        held, index = self._manifest, self._index
        applied = held.segments if held else ()
        merged = manifest.merged_from
        if merged and applied[: len(merged)] == merged:
            applied = (manifest.segments[0], *applied[len(merged) :])
        known = len(applied)
        follows = (
            index is not None
            and held is not None
            and held.base == manifest.base
            and held.generation == manifest.generation
            and manifest.segments[:known] == applied
        )
        if follows:
            assert index is not None
            new_segments = manifest.segments[known:]
        else:
            index = self._load(self.path.parent / manifest.base) if manifest.base else None
            index = self._create() if index is None else index
            new_segments = manifest.segments
        for name in new_segments:
            index.apply_changes(self.path.parent / name)  # type: ignore[attr-defined]
        return index

    def exists(self) -> bool:
        return self.path.exists()

    def last_id(self) -> int | None:
        """The last entry id the files cover, or None when there are no files."""
        manifest = self.manifest()
        return None if manifest is None else manifest.last_id

    def read(self) -> IndexT:
        """The current index, for queries (no lock: published files never change)."""
        return self._fresh()

    def disk_bytes(self) -> int:
        """Bytes of the manifest and every file it names."""
        manifest = self.manifest()
        if manifest is None:
            return 0
        names = {self.path.name, *manifest.file_names()}
        return sum((self.path.parent / name).stat().st_size for name in names)

    # -- writing -------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(self.path.suffix + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def write(self, last_added: int = 0, erase: bool = False) -> Iterator[IndexT]:
        """Change the index; the change is published when the block ends without error,
        with the checkpoint moved on to `last_added` (the newest entry id added).

        `erase`: removed entries must leave no bytes behind (a purge), so the change is
        saved as a new base and the old base and segments, which still hold them, deleted."""
        with self._locked():
            index = self._fresh()
            manifest = self._manifest
            assert manifest is not None
            segmentable = isinstance(index, Segmentable)
            if segmentable:
                index.record_changes()
            try:
                yield index
            except BaseException:
                self._index = self._manifest = None  # half-changed; read the files again
                raise
            last_id = max(last_added, manifest.last_id)
            changes = index.recorded_changes() if segmentable else None
            if changes == 0 and last_id == manifest.last_id:
                index.stop_recording()  # type: ignore[attr-defined]
                return
            fits = changes is not None and manifest.count is not None
            if fits and not erase and self._fits(manifest, changes):
                self._append_segment(index, manifest, changes, last_id)
            else:
                if segmentable:
                    index.stop_recording()  # type: ignore[attr-defined]
                self._compact(index, manifest, last_id)

    def replace(self, index: IndexT, last_id: int = 0) -> None:
        """Swap in a freshly built index (rebuild) holding entries up to `last_id`."""
        with self._locked():
            self._compact(index, self.manifest() or Manifest(base=None), last_id)

    def compact(self) -> None:
        """Save the whole index as a new base now."""
        with self._locked():
            index = self._fresh()
            assert self._manifest is not None
            self._compact(index, self._manifest, self._manifest.last_id)

    def erase_removed(self) -> None:
        """Compact when segments exist: a removal recorded there leaves the removed entry's
        bytes in the base until then."""
        manifest = self.manifest()
        if manifest is not None and manifest.segments:
            self.compact()

    @staticmethod
    def _fits(manifest: Manifest, changes: int) -> bool:
        room = max(SEGMENT_FLOOR, int(manifest.base_entries * COMPACT_FRACTION))
        return manifest.segment_changes + changes <= room

    def _temporary(self, name: str) -> Path:
        return self.path.parent / f"{name}.tmp{os.getpid()}"

    def _append_segment(
        self, index: IndexT, manifest: Manifest, changes: int, last_id: int
    ) -> None:
        segments, merged_from = manifest.segments, manifest.merged_from
        segment_changes = manifest.segment_changes
        if len(segments) >= MAX_SEGMENTS:
            # The older segments become one; a reader that holds them all only applies
            # the newest (see `_open`).
            merged = self._segment_name(manifest)
            manifest = replace(manifest, next_segment=manifest.next_segment + 1)
            temporary = self._temporary(merged)
            sources = [self.path.parent / segment for segment in segments]
            segment_changes = index.merge_changes(sources, temporary)  # type: ignore[attr-defined]
            fsync_path(temporary)
            os.replace(temporary, self.path.parent / merged)
            segments, merged_from = (merged,), segments
        name = self._segment_name(manifest)
        temporary = self._temporary(name)
        index.save_changes(temporary)  # type: ignore[attr-defined]
        fsync_path(temporary)
        os.replace(temporary, self.path.parent / name)
        self._publish(
            index,
            replace(
                manifest,
                segments=(*segments, name),
                merged_from=merged_from,
                last_id=last_id,
                count=len(index),
                segment_changes=segment_changes + changes,
                next_segment=manifest.next_segment + 1,
            ),
        )
        if merged_from is not manifest.merged_from:
            self._remove_unlisted()  # the segments merged

    def _segment_name(self, manifest: Manifest) -> str:
        return f"{self.path.name}.{manifest.generation}.{manifest.next_segment}.delta"

    def _compact(self, index: IndexT, manifest: Manifest, last_id: int) -> None:
        generation = manifest.generation + 1
        name = f"{self.path.name}.{generation}.base"
        temporary = self._temporary(name)
        index.save(temporary)
        fsync_path(temporary)
        os.replace(temporary, self.path.parent / name)
        self._publish(
            index,
            Manifest(
                base=name,
                last_id=last_id,
                count=len(index),
                generation=generation,
                base_entries=len(index),
            ),
        )
        self._remove_unlisted()

    def _publish(self, index: IndexT, manifest: Manifest) -> None:
        temporary = self._temporary(self.path.name)
        temporary.write_bytes(manifest.to_json())
        fsync_path(temporary)
        os.replace(temporary, self.path)
        fsync_path(self.path.parent)  # the renames themselves survive a power cut
        self._index, self._manifest, self._stamp = index, manifest, self._disk_stamp()

    def _remove_unlisted(self) -> None:
        """Delete this index's files that the manifest does not name (called under the
        lock, after a compaction: replaced bases and segments, a crash's leftovers)."""
        assert self._manifest is not None
        keep = {self.path.name, *self._manifest.file_names(), f"{self.path.name}.lock"}
        for found in self.path.parent.glob(f"{self.path.name}.*"):
            if found.name not in keep:
                found.unlink(missing_ok=True)
