"""Turning a file's signals into Signal rows (and back into index entries via banks.py).

A modality with signals beyond file digests and PDQ frames adds an encoder to
`EXTRA_SIGNAL_ENCODERS`: signal name -> function returning the rows to store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansim.detector.audio import SIGNAL_NAME as AUDIO_SIGNAL
from ansim.detector.audio import AudioFingerprint
from ansim.detector.descriptor import SIGNAL_KIND as DESCRIPTOR_KIND
from ansim.detector.descriptor import Descriptor
from ansim.detector.local_verify import SIGNAL_KIND as LOCAL_FEATURES_KIND
from ansim.detector.local_verify import LocalFeatures
from ansim.detector.signals import MediaSignals
from ansim.detector.text import TextSignature
from ansim.detector.video import VideoHashes
from ansim.detector.vpdq_format import format_vpdq
from ansim.store.tables import Signal

# Signal kinds of text: the MinHash signature with hashed shingles (blob), and the
# SHA-256 of the normalized text (value).
TEXT_MINHASH = "text_minhash"
TEXT_SHA256 = "text_sha256"
# Every hashed frame of a video as vPDQ text (its usable frames are also `pdq` rows).
VPDQ_KIND = "vpdq"


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


def vpdq_rows(hashes: VideoHashes) -> list[Signal]:
    """The `vpdq` row of a hashed video: every frame as vPDQ text (its `pdq` rows are the
    usable frames, written by `signal_rows` from `MediaSignals.pdq`)."""
    return [
        Signal(
            kind=VPDQ_KIND,
            frame=len(hashes.frames),
            timestamp=hashes.duration_s,
            blob=format_vpdq(hashes.frames).encode("ascii"),
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
