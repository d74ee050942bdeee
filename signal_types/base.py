"""What a signal type is: one unit that owns its name, the media it accepts, how its
values become stored rows and index entries, its index (with a brute-force twin), and how
it decides a match in either direction.

The name is used everywhere the signal appears: the key in `MediaSignals.extra`, the
stored `Signal.kind`, and the bank (index file) name. Matchers never see the database:
they ask a `BankReader` (implemented over the store by `ansim.pipeline.bank_reader`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only: the registry imports this module before any type
    from ansim.detector.decision import Decision, MatchRules
    from ansim.detector.hashing import Media
    from ansim.detector.local_verify import LocalFeatures
    from ansim.detector.signals import MediaSignals
    from ansim.detector.video_match import VideoSide


class Direction(Enum):
    """Which way a match runs. SCAN: a scanned or crawled item against the reference bank.
    RETRO_HUNT: a new reference against the crawl history (everything seen before)."""

    SCAN = "scan"
    RETRO_HUNT = "retro-hunt"


@dataclass(frozen=True)
class SignalRecord:
    """One stored row of a signal as plain data; the store maps it onto its table."""

    kind: str
    value: str | None = None
    quality: int | None = None
    frame: int | None = None
    timestamp: float | None = None
    blob: bytes | None = None


class StoredSignal(Protocol):
    """A stored row read back: a record with the id that its index entries carry."""

    id: int
    kind: str
    value: str | None
    quality: int | None
    frame: int | None
    timestamp: float | None
    blob: bytes | None


@dataclass(frozen=True)
class IndexSpec:
    """How a signal type's rows become a searchable index, and its exhaustive twin."""

    create: Callable[[], Any]
    load: Callable[[Path], Any]
    add_rows: Callable[[Any, Sequence[StoredSignal]], None]
    brute_force: Callable[[], Any]
    # One value searched as a query, answered as sorted (entry id, rounded score) pairs:
    # what the contract test compares between the index and its brute-force twin.
    probe: Callable[[Any, Any], list[tuple[int, float]]]
    # False for an approximate index (LSH): its answers are a subset of the twin's.
    exact: bool = True
    # The crawl history's kind of index (create, load), where it is searched differently.
    history: tuple[Callable[[], Any], Callable[[Path], Any]] | None = None

    def factories(self, direction: Direction) -> tuple[Callable[[], Any], Callable[[Path], Any]]:
        """The index of the bank that a query in `direction` searches."""
        if direction is Direction.RETRO_HUNT and self.history is not None:
            return self.history
        return self.create, self.load


class BankReader(Protocol):
    """The narrow read interface a matcher gets for one bank (reference bank or crawl
    history); owners are references (SCAN) or crawled items (RETRO_HUNT)."""

    direction: Direction

    def index(self, name: str) -> Any: ...

    def owners_of(self, entry_ids: set[int], model_id: str | None = None) -> dict[int, int]:
        """Index entry -> owner, for entries whose owner is still matchable."""
        ...

    def owners_with_value(self, kind: str, value: str) -> list[int]:
        """Owners with a stored signal of this kind equal to `value` (exact digests)."""
        ...

    def local_features_of(self, owner_ids: set[int]) -> Mapping[int, LocalFeatures]: ...

    def video_frames_of(self, entry_ids: Iterable[int]) -> dict[int, tuple[int, float]]:
        """PDQ entry -> (owner, time of that frame in it) for frames of video owners (SCAN),
        or of any crawled item (RETRO_HUNT: 0.0 for images)."""
        ...

    def video_sides(self, owner_ids: Iterable[int]) -> dict[int, VideoSide]:
        """Sampling step and usable duration of the video owners among `owner_ids`."""
        ...

    def pdq_entries_of(self, owner_ids: Iterable[int]) -> list[tuple[int, str]]:
        """(entry id, PDQ hex) of every PDQ entry these owners have in the bank."""
        ...

    def reference_frame_of(self, entry_id: int) -> tuple[float, int] | None:
        """(time, frame number) when a PDQ entry is a frame of a reference video."""
        ...


class SignalType(Protocol):
    """One kind of signal. `match` is None for a signal that only serves as evidence in
    another type's decision (the descriptor, for the robust image decision)."""

    name: str
    modalities: frozenset[str]
    index: IndexSpec | None
    match: Callable[[MediaSignals, BankReader, MatchRules, Any], list[Decision]] | None

    def hash(self, media: Media, signals: MediaSignals) -> None:
        """Compute this type's values from a decoded file and add them to its signals
        (`media.modality` is one of `modalities`). May raise MediaError."""
        ...

    def values(self, signals: MediaSignals) -> list[Any]:
        """This type's values among a file's signals (empty when it has none)."""
        ...

    def records(self, value: Any) -> list[SignalRecord]:
        """The rows to store for one value."""
        ...
