"""Audio match decision: from offset votes to "this clip is that reference, here", with why.

Votes come from the landmark index (`indexer.audio_index`): per reference, the
(variant, offset) on which most query landmarks agree. Chance agreements between
unrelated music reach a few dozen votes (same keys, same tempos), so a vote alone does
not decide. Each candidate is verified on the peaks themselves: the query's peaks are
mapped into the reference's time and pitch under the candidate alignment, refined in
fine steps of time scale, offset and pitch shift, and counted where a reference peak lies
within one frame and a quarter semitone. A copy lines up a large share of its peaks over
its whole length; unrelated audio lines up a few percent.

Generic audio is guarded separately: matched peaks must spread over several distinct
pitches (a steady tone or hum lines up with any sustained note of the same pitch) and
over a minimum stretch of time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from ansim.detector.audio_landmarks import Variant
from ansim.detector.audio_peaks import FRAMES_PER_SECOND, PITCH_STEPS_PER_SEMITONE


@dataclass(frozen=True)
class AudioMatchRules:
    # Calibrated on 8 indexed recordings of shared/data/audio plus generated filler, with
    # `3436-172162-0000` and `glacier-bay-humpback` as the unrelated queries
    # (`ansim bench audio`). Unrelated audio lines up ~10% of its peaks by chance (the
    # `chance_share`), at best ~25% over a short stretch; copies reach >= 7 standard
    # deviations above chance even at 0 dB SNR, unrelated audio <= 4.5.
    min_evidence_z: float = 6.0
    chance_share: float = 0.1
    # Share of the query's peaks (inside the aligned stretch) that coincide with the reference.
    min_peak_share: float = 0.18
    # Periodic audio (a drum loop against a steady ostinato) can line up many peaks by
    # rhythm alone; landmark pairs (pitch interval and timing together) do not follow.
    min_votes: int = 30
    min_matched_peaks: int = 20
    min_distinct_pitches: int = 5  # semitones among matched peaks
    min_matched_seconds: float = 2.0
    time_tolerance: int = 1  # frames
    pitch_tolerance: float = 0.25  # semitones
    max_candidates: int = 5


@dataclass(frozen=True)
class VoteLike:
    """What the decision reads from an index vote (indexer.audio_index.OffsetVote fits)."""

    entry_id: int
    variant: int
    offset: float
    votes: int


@dataclass(frozen=True)
class AudioAlignment:
    """A verified alignment of a query onto one reference."""

    entry_id: int
    votes: int
    matched_peaks: int
    compared_peaks: int  # query peaks that land inside the reference under the alignment
    peak_share: float
    distinct_pitches: int
    time_scale: float  # query duration / reference duration
    pitch_shift: float  # semitones the query sits above the reference
    query_start: float  # seconds in the query
    query_end: float
    ref_start: float  # seconds in the reference
    ref_end: float

    @property
    def matched_seconds(self) -> float:
        return self.query_end - self.query_start

    def swapped(self) -> AudioAlignment:
        """The same alignment told from the other side: for a retro-hunt, where the new
        reference was the query and the crawled item the indexed entry."""
        return dataclasses.replace(
            self,
            time_scale=1.0 / self.time_scale,
            pitch_shift=-self.pitch_shift,
            query_start=self.ref_start,
            query_end=self.ref_end,
            ref_start=self.query_start,
            ref_end=self.query_end,
        )

    def evidence_z(self, chance_share: float) -> float:
        """Standard deviations by which the matched peaks exceed chance coincidence."""
        expected = self.compared_peaks * chance_share
        spread = (self.compared_peaks * chance_share * (1 - chance_share)) ** 0.5
        return (self.matched_peaks - expected) / max(spread, 1e-9)

    def explanation(self) -> str:
        speed = f"time x{self.time_scale:.3f}" if abs(self.time_scale - 1) > 0.004 else ""
        pitch = f"pitch {self.pitch_shift:+.2f} semitones" if abs(self.pitch_shift) > 0.1 else ""
        change = ", ".join(part for part in (speed, pitch) if part) or "no speed or pitch change"
        return (
            f"audio {_clock(self.query_start)}-{_clock(self.query_end)} of the item matches "
            f"{_clock(self.ref_start)}-{_clock(self.ref_end)} of the reference: "
            f"{self.matched_peaks} spectral peaks ({self.peak_share:.0%}) and {self.votes} "
            f"landmarks agree; {change}"
        )

    def passes(self, rules: AudioMatchRules) -> bool:
        return (
            self.votes >= rules.min_votes
            and self.evidence_z(rules.chance_share) >= rules.min_evidence_z
            and self.peak_share >= rules.min_peak_share
            and self.matched_peaks >= rules.min_matched_peaks
            and self.distinct_pitches >= rules.min_distinct_pitches
            and self.matched_seconds >= rules.min_matched_seconds
        )


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}:{rest:04.1f}"


PeaksOf = Callable[[int], tuple[np.ndarray, np.ndarray]]


def verify_candidates(
    query_frames: np.ndarray,
    query_pitches: np.ndarray,
    votes: Sequence[VoteLike],
    variants: Sequence[Variant],
    peaks_of: PeaksOf,
    rules: AudioMatchRules = AudioMatchRules(),
) -> list[AudioAlignment]:
    """Verify the strongest candidates; returns all verified alignments, best first."""
    out = []
    for vote in [v for v in votes if v.votes >= rules.min_votes][: rules.max_candidates]:
        ref_frames, ref_pitches = peaks_of(vote.entry_id)
        alignment = align_peaks(
            query_frames,
            query_pitches,
            ref_frames,
            ref_pitches,
            vote,
            variants[vote.variant],
            rules,
        )
        if alignment is not None:
            out.append(alignment)
    return sorted(out, key=lambda a: (-a.peak_share, -a.matched_peaks, a.entry_id))


def matching_alignments(
    query_frames: np.ndarray,
    query_pitches: np.ndarray,
    votes: Sequence[VoteLike],
    variants: Sequence[Variant],
    peaks_of: PeaksOf,
    rules: AudioMatchRules = AudioMatchRules(),
) -> list[AudioAlignment]:
    """The verified alignments that pass every rule: the query's matches."""
    return [
        a
        for a in verify_candidates(query_frames, query_pitches, votes, variants, peaks_of, rules)
        if a.passes(rules)
    ]


# Fine search around a vote: time scale a little past the variant grid's half step, offset
# within two vote bins, pitch by histogram within half a semitone.
FINE_SCALE_STEPS = np.linspace(-0.009, 0.009, 13)
SEARCH_FRAMES = 8
MODE_PITCH_RADIUS = 1  # pitch steps (1/16 semitone) either side when locating the mode
PITCH_SEARCH_SEMITONES = 0.5


def align_peaks(
    query_frames: np.ndarray,
    query_pitches: np.ndarray,
    ref_frames: np.ndarray,
    ref_pitches: np.ndarray,
    vote: VoteLike,
    variant: Variant,
    rules: AudioMatchRules,
) -> AudioAlignment | None:
    """Best fine alignment of the query's peaks onto the reference's near a vote."""
    if not len(query_frames) or not len(ref_frames):
        return None
    q_t = query_frames.astype(np.float64)
    q_p = query_pitches.astype(np.float64) - variant.pitch_shift * PITCH_STEPS_PER_SEMITONE
    r_t = ref_frames.astype(np.float64)
    r_p = ref_pitches.astype(np.float64)
    pitch_tol = rules.pitch_tolerance * PITCH_STEPS_PER_SEMITONE
    pitch_reach = PITCH_SEARCH_SEMITONES * PITCH_STEPS_PER_SEMITONE
    best: tuple[int, float, float, float] | None = None  # (count, scale, offset, shift)
    for step in FINE_SCALE_STEPS:
        scale = variant.time_scale * (1.0 + step)
        predicted = q_t / scale + vote.offset
        q_index, r_index = _pairs_within(predicted, r_t, SEARCH_FRAMES)
        if not len(q_index):
            continue
        dt = r_t[r_index] - predicted[q_index]
        dp = r_p[r_index] - q_p[q_index]
        near = np.abs(dp) <= pitch_reach + pitch_tol
        dt, dp = dt[near], dp[near]
        if not len(dt):
            continue
        # Histogram (time offset in frames x pitch shift in steps), then its mode over a
        # narrow box: the refined offset and shift. (A box as wide as the pitch tolerance
        # would drift towards neighbouring partials and miss the true shift by a few steps.)
        t_bins = np.rint(dt).astype(np.int64) + SEARCH_FRAMES
        p_bins = np.rint(dp).astype(np.int64) + int(pitch_reach + pitch_tol)
        grid = np.zeros((2 * SEARCH_FRAMES + 1, 2 * int(pitch_reach + pitch_tol) + 1))
        np.add.at(grid, (t_bins, p_bins), 1)
        boxed = _box_sum(grid, rules.time_tolerance, MODE_PITCH_RADIUS)
        t_best, p_best = np.unravel_index(int(np.argmax(boxed)), boxed.shape)
        count = int(boxed[t_best, p_best])
        if best is None or count > best[0]:
            offset = vote.offset + (t_best - SEARCH_FRAMES)
            shift = float(p_best - int(pitch_reach + pitch_tol))
            best = (count, scale, offset, shift)
    if best is None:
        return None
    _, scale, offset, shift = best
    return _measure(q_t, q_p, r_t, r_p, scale, offset, shift, vote, variant, rules)


def _measure(
    q_t: np.ndarray,
    q_p: np.ndarray,
    r_t: np.ndarray,
    r_p: np.ndarray,
    scale: float,
    offset: float,
    shift: float,
    vote: VoteLike,
    variant: Variant,
    rules: AudioMatchRules,
) -> AudioAlignment:
    """Count distinct query peaks with a reference peak within tolerance of the alignment."""
    predicted = q_t / scale + offset
    q_index, r_index = _pairs_within(predicted, r_t, rules.time_tolerance + 0.5)
    dp = r_p[r_index] - q_p[q_index] - shift
    ok = np.abs(dp) <= rules.pitch_tolerance * PITCH_STEPS_PER_SEMITONE
    matched = np.unique(q_index[ok])
    if ok.any():
        # The search boxes are plateaus; the matched pairs themselves say where in them.
        shift += float(np.median(dp[ok]))
        pair_q, pair_r = q_t[q_index[ok]], r_t[r_index[ok]]
        if len(pair_q) >= 10 and np.ptp(pair_q) > 2 * FRAMES_PER_SECOND:
            slope, _ = np.polyfit(pair_q, pair_r, 1)
            scale = 1.0 / slope
    # Only query peaks that land inside the reference can be expected to match.
    inside = (predicted >= r_t[0] - 1) & (predicted <= r_t[-1] + 1)
    compared = max(int(inside.sum()), 1)
    share = len(matched) / compared
    if len(matched):
        q_seconds = q_t[matched] / FRAMES_PER_SECOND
        r_seconds = predicted[matched] / FRAMES_PER_SECOND
        semitones = np.floor(q_p[matched] / PITCH_STEPS_PER_SEMITONE)
        distinct = len(np.unique(semitones))
    else:
        q_seconds = r_seconds = np.zeros(1)
        distinct = 0
    return AudioAlignment(
        entry_id=vote.entry_id,
        votes=vote.votes,
        matched_peaks=len(matched),
        compared_peaks=compared,
        peak_share=share,
        distinct_pitches=distinct,
        time_scale=float(scale),
        # dp = reference - (query - variant shift): the query sits above by variant - dp.
        pitch_shift=variant.pitch_shift - shift / PITCH_STEPS_PER_SEMITONE,
        query_start=float(q_seconds.min()),
        query_end=float(q_seconds.max()),
        ref_start=float(r_seconds.min()),
        ref_end=float(r_seconds.max()),
    )


def _pairs_within(
    predicted: np.ndarray, ref_times: np.ndarray, reach: float
) -> tuple[np.ndarray, np.ndarray]:
    """(query index, reference index) of every reference peak within `reach` frames."""
    low = np.searchsorted(ref_times, predicted - reach, side="left")
    high = np.searchsorted(ref_times, predicted + reach, side="right")
    counts = high - low
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    q_index = np.repeat(np.arange(len(predicted)), counts)
    r_index = np.repeat(low - np.cumsum(counts) + counts, counts) + np.arange(total)
    return q_index, r_index


def _box_sum(grid: np.ndarray, t_radius: int, p_radius: int) -> np.ndarray:
    """Sum of each (2*t_radius+1) x (2*p_radius+1) box, same shape, zero padded."""
    padded = np.pad(grid, ((t_radius + 1, t_radius), (p_radius + 1, p_radius)))
    cumulative = padded.cumsum(0).cumsum(1)
    t_size, p_size = 2 * t_radius + 1, 2 * p_radius + 1
    return (
        cumulative[t_size:, p_size:]
        - cumulative[:-t_size, p_size:]
        - cumulative[t_size:, :-p_size]
        + cumulative[:-t_size, :-p_size]
    )
