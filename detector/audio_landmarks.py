"""Landmarks: pairs of spectral peaks hashed with their pitch and time distances.

A landmark joins an anchor peak to one of the next few peaks after it. Its 32-bit hash
packs the anchor's pitch (coarse), the pitch interval to the target and the time between
them; the anchor's frame is kept beside the hash as its time.

Speed and pitch changes move every peak: resampling by a factor s (speed) scales times by
1/s and shifts pitch by 12*log2(s) semitones; a pitch shift only moves pitch, a tempo
change only times. Peaks sit on a pitch (log-frequency) axis, so the interval between two
peaks survives any pitch shift and only the coarse anchor pitch moves. References are
hashed once as they are; a query is hashed under a small grid of assumed
(time scale, pitch shift) variants that undo the change (`query_variants`), and the index
votes within each variant. This keeps the reference index at one copy while the query pays
for the search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ansim.detector.audio_peaks import PITCH_STEPS_PER_SEMITONE

# Field widths of the 32-bit hash (anchor pitch | interval | time delta).
ANCHOR_BITS = 7
INTERVAL_BITS = 7
DELTA_BITS = 7


@dataclass(frozen=True)
class LandmarkScheme:
    # Anchor pitch bucket width and interval bucket width, in semitones.
    anchor_semitones: float = 1.0
    interval_semitones: float = 0.5
    max_interval_semitones: float = 24.0
    # Time between anchor and target, in frames (both ends inclusive).
    min_delta: int = 1
    max_delta: int = 63
    delta_step: int = 1
    fan_out: int = 8


@dataclass(frozen=True)
class Variant:
    """An assumed transform of the query relative to its reference."""

    time_scale: float  # query duration / reference duration
    pitch_shift: float  # semitones the query sits above the reference


@dataclass(frozen=True)
class Landmarks:
    hashes: np.ndarray  # uint32
    times: np.ndarray  # float64 anchor frame, in reference time for query variants


def pair_peaks(
    frames: np.ndarray, pitches: np.ndarray, scheme: LandmarkScheme, time_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (anchor, target) of every landmark pair, at most `fan_out` per anchor.

    `time_scale` widens or narrows the target zone so a stretched query pairs the same
    peaks its reference did.
    """
    count = len(frames)
    frames = frames.astype(np.int64)
    max_delta = scheme.max_delta * time_scale
    min_delta = scheme.min_delta * time_scale
    max_interval = scheme.max_interval_semitones * PITCH_STEPS_PER_SEMITONE
    anchors: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    taken = np.zeros(count, dtype=np.int64)
    step = 1
    while step < count:
        anchor = np.arange(count - step)
        if not len(anchor):
            break
        target = anchor + step
        delta = frames[target] - frames[anchor]
        in_reach = delta <= max_delta
        if not in_reach.any():
            break
        ok = (
            in_reach
            & (delta >= min_delta)
            & (np.abs(pitches[target] - pitches[anchor]) <= max_interval)
            & (taken[anchor] < scheme.fan_out)
        )
        anchor = anchor[ok]
        taken[anchor] += 1
        anchors.append(anchor)
        targets.append(target[ok])
        step += 1
    if not anchors:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(anchors), np.concatenate(targets)


def hash_pairs(
    frames: np.ndarray,
    pitches: np.ndarray,
    anchors: np.ndarray,
    targets: np.ndarray,
    scheme: LandmarkScheme,
    variant: Variant = Variant(1.0, 0.0),
) -> Landmarks:
    """Hash pairs as the reference would have produced them if the variant is right."""
    frames = frames.astype(np.float64)
    pitches = pitches.astype(np.float64)
    shift = variant.pitch_shift * PITCH_STEPS_PER_SEMITONE
    anchor_pitch = np.floor(
        (pitches[anchors] - shift) / (scheme.anchor_semitones * PITCH_STEPS_PER_SEMITONE)
    )
    interval = np.rint(
        (pitches[targets] - pitches[anchors])
        / (scheme.interval_semitones * PITCH_STEPS_PER_SEMITONE)
    )
    delta = np.rint((frames[targets] - frames[anchors]) / variant.time_scale / scheme.delta_step)
    anchor_code = np.clip(anchor_pitch, 0, (1 << ANCHOR_BITS) - 1).astype(np.uint32)
    interval_code = np.clip(
        interval + (1 << (INTERVAL_BITS - 1)), 0, (1 << INTERVAL_BITS) - 1
    ).astype(np.uint32)
    delta_code = np.clip(delta, 0, (1 << DELTA_BITS) - 1).astype(np.uint32)
    hashes = (
        (anchor_code << (INTERVAL_BITS + DELTA_BITS)) | (interval_code << DELTA_BITS) | delta_code
    )
    return Landmarks(hashes=hashes, times=frames[anchors] / variant.time_scale)


def reference_landmarks(
    frames: np.ndarray, pitches: np.ndarray, scheme: LandmarkScheme = LandmarkScheme()
) -> Landmarks:
    anchors, targets = pair_peaks(frames, pitches, scheme)
    return hash_pairs(frames, pitches, anchors, targets, scheme)


@dataclass(frozen=True)
class VariantGrid:
    """The (time scale, pitch shift) grid a query is searched across."""

    # Time scales 0.9475 ... 1.0525: speed changes of +-5% (1/1.05 .. 1/0.95) lie inside,
    # within 0.9% of a grid point.
    max_speed_change: float = 0.0525
    time_step: float = 0.0175
    max_pitch_shift: float = 1.0
    pitch_step: float = 0.5

    def variants(self) -> list[Variant]:
        time_steps = int(round(self.max_speed_change / self.time_step))
        pitch_steps = int(round(self.max_pitch_shift / self.pitch_step))
        scales = [1.0 + k * self.time_step for k in range(-time_steps, time_steps + 1)]
        shifts = [k * self.pitch_step for k in range(-pitch_steps, pitch_steps + 1)]
        return [Variant(s, p) for s in scales for p in shifts]


def query_variants(
    frames: np.ndarray,
    pitches: np.ndarray,
    scheme: LandmarkScheme = LandmarkScheme(),
    grid: VariantGrid = VariantGrid(),
) -> list[tuple[Variant, Landmarks]]:
    """The query's landmarks under every variant of the grid (identity included)."""
    out = []
    pairs_by_scale: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for variant in grid.variants():
        if variant.time_scale not in pairs_by_scale:
            pairs_by_scale[variant.time_scale] = pair_peaks(
                frames, pitches, scheme, variant.time_scale
            )
        anchors, targets = pairs_by_scale[variant.time_scale]
        out.append((variant, hash_pairs(frames, pitches, anchors, targets, scheme, variant)))
    return out
