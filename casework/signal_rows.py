"""Turning a file's signals into Signal rows (and back into index entries via banks.py).

A modality with signals beyond file digests and PDQ frames adds an encoder to
`EXTRA_SIGNAL_ENCODERS`: signal name -> function returning the rows to store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from casework.models import Signal
from casework.video_matching import vpdq_rows
from detector.audio import SIGNAL_NAME as AUDIO_SIGNAL
from detector.audio import AudioFingerprint
from detector.descriptor import SIGNAL_KIND as DESCRIPTOR_KIND
from detector.descriptor import Descriptor
from detector.local_verify import SIGNAL_KIND as LOCAL_FEATURES_KIND
from detector.local_verify import LocalFeatures
from detector.signals import MediaSignals
from detector.text import TextSignature

# Signal kinds of text: the MinHash signature with hashed shingles (blob), and the
# SHA-256 of the normalized text (value).
TEXT_MINHASH = "text_minhash"
TEXT_SHA256 = "text_sha256"


def _text_minhash_rows(signature: TextSignature) -> list[Signal]:
    return [Signal(kind=TEXT_MINHASH, blob=signature.to_bytes())]


def _text_sha256_rows(digest: str) -> list[Signal]:
    return [Signal(kind=TEXT_SHA256, value=digest)]


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


def _descriptor_rows(descriptor: Descriptor) -> list[Signal]:
    # value names the model: vectors of other weights are never compared with these.
    return [Signal(kind=DESCRIPTOR_KIND, value=descriptor.model_id, blob=descriptor.to_blob())]


def _local_feature_rows(features: LocalFeatures) -> list[Signal]:
    return [
        Signal(
            kind=LOCAL_FEATURES_KIND, value=f"{len(features)} keypoints", blob=features.to_blob()
        )
    ]


EXTRA_SIGNAL_ENCODERS: dict[str, Callable[[Any], list[Signal]]] = {
    "minhash": _text_minhash_rows,
    "normalized_sha256": _text_sha256_rows,
    "vpdq": vpdq_rows,
    AUDIO_SIGNAL: audio_rows,
    DESCRIPTOR_KIND: _descriptor_rows,
    LOCAL_FEATURES_KIND: _local_feature_rows,
}


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
