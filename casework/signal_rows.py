"""Turning a file's signals into Signal rows (and back into index entries via banks.py).

A modality with signals beyond file digests and PDQ frames adds an encoder to
`EXTRA_SIGNAL_ENCODERS`: signal name -> function returning the rows to store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from casework.models import Signal
from detector.signals import MediaSignals

EXTRA_SIGNAL_ENCODERS: dict[str, Callable[[Any], list[Signal]]] = {}


def rows_from_signals(signals: MediaSignals) -> list[Signal]:
    rows = [Signal(kind="sha256", value=signals.sha256), Signal(kind="md5", value=signals.md5)]
    rows += [
        Signal(
            kind="pdq",
            value=frame.pdq,
            quality=frame.quality,
            frame=frame.frame,
            timestamp=frame.timestamp,
        )
        for frame in signals.pdq
    ]
    for name, value in signals.extra.items():
        encoder = EXTRA_SIGNAL_ENCODERS.get(name)
        if encoder is not None:
            rows += encoder(value)
    return rows
