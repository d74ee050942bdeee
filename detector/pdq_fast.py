"""PDQ of video frames, computed only where the algorithm looks.

PDQ (Meta's reference, `pdqhash`) blurs the whole luma image with two passes of a box
filter along each axis (the "Jarosz" filter), then keeps 64 x 64 samples of it. The
filter is linear and separable, so the 64 x 64 samples are `rows @ luma @ columns.T`,
where `rows` (64 x height) and `columns` (64 x width) are the filter's weights at the
sampled rows and columns: sparse bands, built once per frame size. That costs about
one multiply-add per pixel instead of the reference's eight passes over a float copy
of the frame (an order of magnitude less CPU a frame, see benchmarks/RESULTS.md,
"video"), and hashing every frame is what reference videos need.

The rest (quality from the 64 x 64 gradients, the 16 x 16 DCT, the median threshold and
the mirror from DCT signs) follows the reference. Results agree with `pdqhash` up to
float rounding: the same hash on almost every frame, a bit or two off where a DCT
coefficient sits on the median (tests/detector/test_pdq_fast.py compares them).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
from ansim.detector.pdq import bits_to_hex
from scipy import sparse

SAMPLES = 64
DCT_SIDE = 16
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
BOX_PASSES = 2


def _box_window(length: int) -> int:
    """The reference's box width along an axis of `length` pixels."""
    return (length + 2 * SAMPLES - 1) // (2 * SAMPLES)


def _box_operator(length: int) -> sparse.csr_matrix:
    """One box-filter pass as a matrix: each output is the mean of the inputs in its
    window, cut short (and averaged over fewer) at the ends, as the reference does."""
    window = _box_window(length)
    ahead = (window + 2) // 2 - 1  # inputs after the output position
    behind = window - ahead - 1
    positions = np.arange(length)
    low = np.maximum(0, positions - behind)
    high = np.minimum(length - 1, positions + ahead)
    counts = high - low + 1
    rows = np.repeat(positions, counts)
    columns = np.concatenate([np.arange(a, b + 1) for a, b in zip(low, high, strict=True)])
    weights = np.repeat(1.0 / counts, counts)
    return sparse.csr_matrix((weights, (rows, columns)), shape=(length, length))


@lru_cache(maxsize=16)
def sample_weights(length: int) -> sparse.csr_matrix:
    """(64 x length) weights of the filtered image's sampled positions along one axis."""
    one_pass = _box_operator(length)
    filtered = one_pass
    for _ in range(BOX_PASSES - 1):
        filtered = filtered @ one_pass
    sampled = np.floor((np.arange(SAMPLES) + 0.5) * length / SAMPLES).astype(int)
    return filtered[sampled].astype(np.float32).tocsr()


@lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    frequency = np.arange(1, DCT_SIDE + 1)[:, None]
    position = np.arange(SAMPLES)[None, :]
    scale = np.sqrt(2.0 / SAMPLES)
    return (scale * np.cos(np.pi / 2 / SAMPLES * frequency * (2 * position + 1))).astype(np.float32)


def samples_64(pixels: np.ndarray) -> np.ndarray:
    """The filtered luma at PDQ's 64 x 64 sample points of an (h, w, 3) RGB or an
    (h, w, 1) luma uint8 frame."""
    height, width, channels = pixels.shape
    rows, columns = sample_weights(height), sample_weights(width)
    banded = rows @ pixels.astype(np.float32).reshape(height, width * channels)
    if channels == 3:
        banded = banded.reshape(SAMPLES, width, 3) @ np.asarray(LUMA_WEIGHTS, np.float32)
    return (columns @ banded.T).T  # (64, 64)


def quality_of(samples: np.ndarray) -> int:
    """The reference's quality: summed neighbour gradients (in percent of full scale)."""
    vertical = np.trunc((samples[:-1, :] - samples[1:, :]) * 100 / 255)
    horizontal = np.trunc((samples[:, :-1] - samples[:, 1:]) * 100 / 255)
    gradients = int(np.abs(vertical).sum() + np.abs(horizontal).sum())
    return min(100, gradients // 90)


def _dct_coefficients(samples: np.ndarray) -> np.ndarray:
    """The 16 x 16 DCT coefficients (frequencies 1-16) of the 64 x 64 samples."""
    dct = _dct_matrix()
    return dct @ samples @ dct.T


def _threshold(coefficients: np.ndarray) -> str:
    flat = coefficients.ravel()
    median = np.partition(flat, flat.size // 2 - 1)[flat.size // 2 - 1]
    return bits_to_hex((flat > median)[::-1])


class DihedralStep(NamedTuple):
    """One of the eight rotations and mirrors, as it acts on the DCT coefficients: a
    transpose first, then a sign flip of every odd-frequency row and/or column."""

    transpose: bool
    flip_rows: bool
    flip_columns: bool


# pdqhash's order (original, rot90, rot180, rot270, flipX, flipY, flipPlus1, flipMinus1),
# each as the reference's own dihedral hashes are found to be (tests/detector/
# test_pdq_fast.py holds every one to the reference).
DIHEDRAL_STEPS = (
    DihedralStep(False, False, False),
    DihedralStep(True, True, False),
    DihedralStep(False, True, True),
    DihedralStep(True, False, True),
    DihedralStep(False, True, False),
    DihedralStep(False, False, True),
    DihedralStep(True, False, False),
    DihedralStep(True, True, True),
)
# flipY: mirroring the columns flips the sign of every odd-frequency column coefficient.
LEFT_RIGHT_MIRROR = DIHEDRAL_STEPS[5]
# -1 at the odd frequencies (the DCT's first row is frequency 1), +1 at the even ones.
ODD_FREQUENCY_SIGNS = np.where(np.arange(1, DCT_SIDE + 1) % 2 == 1, -1.0, 1.0).astype(np.float32)


def _turned(coefficients: np.ndarray, step: DihedralStep) -> np.ndarray:
    """The DCT coefficients of the frame turned or mirrored by `step`."""
    turned = coefficients.T if step.transpose else coefficients
    if step.flip_rows:
        turned = turned * ODD_FREQUENCY_SIGNS[:, None]
    if step.flip_columns:
        turned = turned * ODD_FREQUENCY_SIGNS[None, :]
    return turned


def hash_frame(
    pixels: np.ndarray, mirror: bool = False, studio_range: bool = False
) -> tuple[str, int, str]:
    """PDQ hash, quality and (when `mirror`) the left-right mirror's hash ('' otherwise) of
    an (h, w, 3) RGB or (h, w, 1) luma frame. `studio_range`: luma runs 16-235 (a video
    decoder's Y plane), stretched to 0-255 so the quality reads as from RGB."""
    samples = samples_64(pixels)
    if studio_range:
        samples = (samples - 16.0) * np.float32(255.0 / 219.0)
    coefficients = _dct_coefficients(samples)
    mirrored = _threshold(_turned(coefficients, LEFT_RIGHT_MIRROR)) if mirror else ""
    return _threshold(coefficients), quality_of(samples), mirrored


def hash_dihedral(pixels: np.ndarray) -> tuple[list[str], int]:
    """The 8 dihedral hashes, in pdqhash's order, and the quality of an (h, w, 3) RGB
    frame: one filtering and one DCT, the variants from the coefficients' symmetries."""
    samples = samples_64(pixels)
    coefficients = _dct_coefficients(samples)
    hashes = [_threshold(_turned(coefficients, step)) for step in DIHEDRAL_STEPS]
    return hashes, quality_of(samples)
