"""The registry of signal types: every signal ansim computes, stores, indexes and matches.

Each type is one unit (see `base.SignalType`): its name is the `MediaSignals.extra` key,
the stored `Signal.kind` and the bank name alike. Adding a signal type is one module here
(or a folder for a new modality, with its detector code) and one line in `REGISTRY`.
The order is the order in which decisions are tried; the strongest per owner wins.
"""

from __future__ import annotations

from ansim.detector.signals import MediaSignals
from ansim.signal_types.audio import AudioType
from ansim.signal_types.base import (
    BankReader,
    Direction,
    IndexSpec,
    SignalRecord,
    SignalType,
    StoredSignal,
)
from ansim.signal_types.descriptor import DescriptorType
from ansim.signal_types.digests import MD5, SHA256
from ansim.signal_types.orb import OrbType
from ansim.signal_types.pdq import PdqType
from ansim.signal_types.text_exact import TextSha256Type
from ansim.signal_types.text_minhash import TextMinhashType
from ansim.signal_types.vpdq import VpdqType

REGISTRY: list[SignalType] = [
    SHA256,
    MD5,
    PdqType(),
    DescriptorType(),
    OrbType(),
    TextSha256Type(),
    TextMinhashType(),
    VpdqType(),
    AudioType(),
]


def by_name(name: str) -> SignalType:
    for signal_type in REGISTRY:
        if signal_type.name == name:
            return signal_type
    raise KeyError(f"no signal type named {name!r}")


def indexed_types() -> list[SignalType]:
    """The types that keep an index (a bank of their own)."""
    return [t for t in REGISTRY if t.index is not None]


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
    "indexed_types",
    "records_of",
]
