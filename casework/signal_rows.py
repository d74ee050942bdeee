"""Turning a file's signals into Signal rows (and back into index entries via banks.py).

A modality with signals beyond file digests and PDQ frames adds an encoder to
`EXTRA_SIGNAL_ENCODERS`: signal name -> function returning the rows to store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from casework.models import Signal
from detector.audio import SIGNAL_NAME as AUDIO_SIGNAL
from detector.audio import AudioFingerprint
from detector.signals import MediaSignals


def audio_rows(fingerprint: AudioFingerprint) -> list[Signal]:
    """One row per audio track: its peaks in `blob`, its length in `timestamp`."""
    return [
        Signal(
            kind=AUDIO_SIGNAL,
            value=f"{fingerprint.landmark_count} landmarks",
            timestamp=fingerprint.duration,
            blob=fingerprint.to_blob(),
        )
    ]


EXTRA_SIGNAL_ENCODERS: dict[str, Callable[[Any], list[Signal]]] = {AUDIO_SIGNAL: audio_rows}


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
