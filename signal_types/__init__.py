"""The registry of signal types: every signal ansim computes, stores, indexes and matches.

Each type is one unit (see `base.SignalType`): its name is the `MediaSignals.extra` key,
the stored `Signal.kind` and the bank name alike. Adding a signal type is one module here
(or a folder for a new modality, with its detector code) and one line in `REGISTRY`.
The order is the order in which decisions are tried; the strongest per owner wins.
A line declares where the type lives and is imported when the registry is first read
(`registry.Registry`), so that commands that match nothing never load a detector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansim.signal_types.base import (
    BankReader,
    Direction,
    IndexSpec,
    SignalRecord,
    SignalType,
    StoredSignal,
)
from ansim.signal_types.registry import Declared, Registry

if TYPE_CHECKING:
    from ansim.detector.signals import MediaSignals

_HERE = "ansim.signal_types"

REGISTRY: Registry = Registry(
    [
        Declared("sha256", f"{_HERE}.digests", "SHA256", indexed=False),
        Declared("md5", f"{_HERE}.digests", "MD5", indexed=False),
        Declared("pdq", f"{_HERE}.pdq", "PdqType", indexed=True),
        Declared("descriptor", f"{_HERE}.descriptor", "DescriptorType", indexed=True),
        Declared("orb", f"{_HERE}.orb", "OrbType", indexed=True),
        Declared("text_sha256", f"{_HERE}.text_exact", "TextSha256Type", indexed=False),
        Declared("text_minhash", f"{_HERE}.text_minhash", "TextMinhashType", indexed=True),
        Declared("vpdq", f"{_HERE}.vpdq", "VpdqType", indexed=False),
        Declared("audio", f"{_HERE}.audio", "AudioType", indexed=True),
    ]
)


def by_name(name: str) -> SignalType:
    for signal_type in REGISTRY:
        if signal_type.name == name:
            return signal_type
    raise KeyError(f"no signal type named {name!r}")


def indexed_types() -> list[SignalType]:
    """The types that keep an index (a bank of their own)."""
    return [t for t in REGISTRY if t.index is not None]


def indexed_type_names() -> list[str]:
    """The names of the types that keep an index, importing no type's module."""
    if isinstance(REGISTRY, Registry):
        return REGISTRY.names(indexed_only=True)
    return [t.name for t in indexed_types()]  # a plain list put in its place (tests)


def records_of(signals: MediaSignals) -> list[SignalRecord]:
    """Every row to store for one file's signals, type by type."""
    return [
        record
        for signal_type in REGISTRY
        for value in signal_type.values(signals)
        for record in signal_type.records(value)
    ]


__all__ = [
    "REGISTRY",
    "BankReader",
    "Direction",
    "IndexSpec",
    "SignalRecord",
    "SignalType",
    "StoredSignal",
    "by_name",
    "indexed_type_names",
    "indexed_types",
    "records_of",
]
