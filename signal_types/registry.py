"""The registry's list, whose signal types are imported on first use: each type's module
imports its detector and index (numpy, FAISS, OpenCV, SciPy...), which costs a command that
only lists cases or references more than all the rest of its start-up."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, MutableSequence
from dataclasses import dataclass
from typing import Any, overload

from ansim.signal_types.base import SignalType


@dataclass(frozen=True)
class Declared:
    """A signal type not imported yet: where it lives (a module attribute holding the type,
    or its class), and its name and whether it keeps an index, so that listing names loads
    nothing. Loading checks that the declaration says what the type says."""

    name: str
    module: str
    attribute: str
    indexed: bool

    def load(self) -> SignalType:
        found = getattr(importlib.import_module(self.module), self.attribute)
        signal_type: SignalType = found() if isinstance(found, type) else found
        if signal_type.name != self.name or (signal_type.index is not None) != self.indexed:
            raise RuntimeError(
                f"{self.module}.{self.attribute} is {signal_type.name!r} (indexed: "
                f"{signal_type.index is not None}), declared {self.name!r} (indexed: "
                f"{self.indexed}) in the registry"
            )
        return signal_type


class Registry(MutableSequence[SignalType]):
    """A list of signal types (`append` adds one) whose declared entries are imported the
    first time the list itself is read."""

    def __init__(self, entries: Iterable[Declared | SignalType]) -> None:
        self._entries: list[Declared | SignalType] = list(entries)

    def names(self, indexed_only: bool = False) -> list[str]:
        """The types' names in order (only those that keep an index), importing none."""
        return [
            entry.name
            for entry in self._entries
            if not indexed_only
            or (entry.indexed if isinstance(entry, Declared) else entry.index is not None)
        ]

    def _loaded(self) -> list[Any]:
        if any(isinstance(entry, Declared) for entry in self._entries):
            self._entries = [
                entry.load() if isinstance(entry, Declared) else entry for entry in self._entries
            ]
        return self._entries

    @overload
    def __getitem__(self, index: int) -> SignalType: ...
    @overload
    def __getitem__(self, index: slice) -> list[SignalType]: ...
    def __getitem__(self, index: int | slice) -> Any:
        return self._loaded()[index]

    def __setitem__(self, index: Any, value: Any) -> None:
        self._loaded()[index] = value

    def __delitem__(self, index: int | slice) -> None:
        del self._loaded()[index]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[SignalType]:
        return iter(self._loaded())

    def insert(self, index: int, value: SignalType) -> None:
        self._loaded().insert(index, value)

    def __repr__(self) -> str:
        return f"Registry({self.names()!r})"
