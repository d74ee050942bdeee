"""Spectral peaks: the salient time-frequency points that landmarks are built from.

A short-time spectrum of the mono signal at `TARGET_RATE`, then the points that are the
loudest in their time-frequency neighbourhood and stand well above their surroundings.
Peaks are kept per second by prominence so density stays even through loud and quiet
passages, and a level floor keeps silence and dither from producing any.

Frequencies are reported on a logarithmic (pitch) axis in `PITCH_STEPS_PER_SEMITONE`
steps, refined between FFT bins by parabolic interpolation: a pitch shift is then a
translation on that axis, which the landmark hashes exploit.

Works on a stream of chunks: frames continue across chunk boundaries and a peak is only
decided once its whole neighbourhood has been seen, so chunking changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ansim.detector.audio_decode import TARGET_RATE

N_FFT = 1024
HOP = 256
FRAMES_PER_SECOND = TARGET_RATE / HOP
MIN_HZ = 150.0
MAX_HZ = 3800.0
REFERENCE_HZ = MIN_HZ
PITCH_STEPS_PER_SEMITONE = 16


@dataclass(frozen=True)
class PeakOptions:
    # Neighbourhood a peak must dominate: +-freq bins, +-frames.
    freq_radius: int = 6
    time_radius: int = 3
    # How far (dB) a peak must stand above the mean of a wider neighbourhood.
    min_prominence_db: float = 3.0
    # Below this level (dB relative to a full-scale sine) nothing counts: silence, dither.
    floor_db: float = -75.0
    peaks_per_second: int = 30


_FIRST_BIN = int(np.floor(MIN_HZ * N_FFT / TARGET_RATE))
_LAST_BIN = int(np.ceil(MAX_HZ * N_FFT / TARGET_RATE))
_WINDOW = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
# dB offset so a full-scale sine reads about 0 dB.
_FULL_SCALE_DB = 20 * np.log10(_WINDOW.sum() / 2)


def spectrogram_db(samples: np.ndarray) -> np.ndarray:
    """Log power (dB re full scale), shape (frames, bins in MIN_HZ..MAX_HZ), no padding."""
    # scipy's FFT and filters are imported where used: every hashing worker imports this
    # module, and one scanning photos would pay their import at start-up for nothing.
    import scipy.fft

    if len(samples) < N_FFT:
        return np.zeros((0, _LAST_BIN - _FIRST_BIN + 1), dtype=np.float32)
    count = 1 + (len(samples) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(samples, N_FFT)[::HOP][:count]
    spectrum = scipy.fft.rfft(frames * _WINDOW, axis=1)[:, _FIRST_BIN : _LAST_BIN + 1]
    power = spectrum.real**2 + spectrum.imag**2
    power += 1e-12
    db = np.log10(power, out=power)
    db *= 10
    db -= _FULL_SCALE_DB
    return db


def pick_peaks(spec: np.ndarray, options: PeakOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame, bin, prominence dB) of every peak of a spectrogram block, before density capping."""
    from scipy.ndimage import maximum_filter, uniform_filter

    local_max = maximum_filter(
        spec, size=(2 * options.time_radius + 1, 2 * options.freq_radius + 1), mode="nearest"
    )
    surround = uniform_filter(
        spec, size=(2 * _reach(options) + 1, 6 * options.freq_radius + 1), mode="nearest"
    )
    prominence = spec - surround
    is_peak = (spec == local_max) & (spec > options.floor_db)
    is_peak &= prominence >= options.min_prominence_db
    # Interior bins only, so the parabola has both neighbours.
    is_peak[:, 0] = False
    is_peak[:, -1] = False
    frames, bins = np.nonzero(is_peak)
    return frames, bins, prominence[frames, bins]


def _reach(options: PeakOptions) -> int:
    """How many frames either side a peak decision looks at."""
    return 2 * options.time_radius


class PeakStream:
    """Feed mono chunks, then `finish()`: the peaks as (frame, pitch step) arrays.

    A peak at frame f is decided once frames f-reach..f+reach are buffered, so the result
    is the same as for the whole signal at once, whatever the chunking.
    """

    def __init__(self, options: PeakOptions = PeakOptions()) -> None:
        self.options = options
        self._samples_tail = np.zeros(0, dtype=np.float32)
        self._spec = np.zeros((0, _LAST_BIN - _FIRST_BIN + 1), dtype=np.float32)
        self._spec_start = 0  # frame number of self._spec[0]
        self._decided_until = 0  # frames before this have had their peaks picked
        self._frames: list[np.ndarray] = []
        self._pitches: list[np.ndarray] = []
        self._prominences: list[np.ndarray] = []
        self.total_samples = 0

    def feed(self, chunk: np.ndarray) -> None:
        self.total_samples += len(chunk)
        samples = np.concatenate([self._samples_tail, chunk.astype(np.float32, copy=False)])
        spec = spectrogram_db(samples)
        self._samples_tail = samples[len(spec) * HOP :]
        self._spec = np.concatenate([self._spec, spec])
        self._decide(final=False)

    def _decide(self, final: bool) -> None:
        reach = _reach(self.options)
        end = self._spec_start + len(self._spec)
        decide_to = end if final else end - reach
        if decide_to <= self._decided_until:
            return
        frames, bins, prominence = pick_peaks(self._spec, self.options)
        frames = frames + self._spec_start
        keep = (frames >= self._decided_until) & (frames < decide_to)
        local = frames[keep] - self._spec_start
        self._frames.append(frames[keep])
        self._pitches.append(_bin_to_pitch(self._spec, local, bins[keep]))
        self._prominences.append(prominence[keep])
        self._decided_until = decide_to
        drop = max(self._decided_until - reach - self._spec_start, 0)
        self._spec = self._spec[drop:]
        self._spec_start += drop

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """All peaks, sorted by frame then pitch: (frame uint32, pitch step float32)."""
        self._decide(final=True)
        if not self._frames:
            return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.float32)
        frames = np.concatenate(self._frames)
        pitches = np.concatenate(self._pitches)
        prominences = np.concatenate(self._prominences)
        keep = _cap_density(frames, prominences, self.options.peaks_per_second)
        frames, pitches = frames[keep], pitches[keep]
        order = np.lexsort((pitches, frames))
        return frames[order].astype(np.uint32), pitches[order].astype(np.float32)


def _bin_to_pitch(spec: np.ndarray, frames: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Parabolic interpolation between FFT bins, then Hz -> pitch steps above REFERENCE_HZ."""
    left = spec[frames, bins - 1]
    centre = spec[frames, bins]
    right = spec[frames, bins + 1]
    curvature = left - 2 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    hz = (bins + _FIRST_BIN + delta) * TARGET_RATE / N_FFT
    return 12 * PITCH_STEPS_PER_SEMITONE * np.log2(hz / REFERENCE_HZ)


def _cap_density(frames: np.ndarray, strengths: np.ndarray, per_second: int) -> np.ndarray:
    """Indices of the peaks that are among the `per_second` most prominent within +-0.5 s.

    A sliding window rather than fixed one-second blocks, so a clip cut at any point keeps
    the same peaks as the whole recording around it.
    """
    count = len(frames)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    frames = frames.astype(np.int64)
    reach = int(FRAMES_PER_SECOND / 2)
    stronger = np.zeros(count, dtype=np.int64)  # neighbours within reach that are stronger
    step = 1
    while step < count:
        left = np.arange(count - step)
        right = left + step
        close = frames[right] - frames[left] <= reach
        if not close.any():
            break
        left, right = left[close], right[close]
        # Ties broken by position so equal peaks do not both count each other stronger.
        right_wins = strengths[right] >= strengths[left]
        np.add.at(stronger, left[right_wins], 1)
        np.add.at(stronger, right[~right_wins], 1)
        step += 1
    return np.nonzero(stronger < per_second)[0]
