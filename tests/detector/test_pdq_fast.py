"""The fast frame PDQ against its reference twin, Meta's algorithm in `pdqhash`."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from ansim.detector.pdq import hash_pixels_dihedral, pdq_distance
from ansim.detector.pdq_fast import hash_dihedral, hash_frame, sample_weights
from PIL import Image

# pdqhash's dihedral order: original, rot90, rot180, rot270, flipX, flipY, ... The
# left-right mirror is flipY.
REFERENCE_MIRROR = 5


def _photos(shared_data: Path, count: int) -> list[np.ndarray]:
    paths = sorted((shared_data / "images").rglob("*.jpg"))[:count]
    if not paths:
        pytest.skip("no shared images")
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def _video_frames(shared_data: Path) -> list[np.ndarray]:
    videos = sorted((shared_data / "threatexchange/tmk/sample-videos").glob("*.mp4"))[:4]
    frames = []
    for video in videos:
        with av.open(str(video)) as container:
            for number, frame in enumerate(container.decode(video=0)):
                if number % 60 == 0:
                    frames.append(frame.to_ndarray(format="rgb24"))
    return frames


def _synthetic() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    shapes = [(64, 64), (37, 91), (480, 720), (1080, 1920), (720, 1281), (100, 5)]
    images = []
    for height, width in shapes:
        # Smooth random fields: structure at several scales, like a picture.
        coarse = rng.random((max(2, height // 16), max(2, width // 16), 3)) * 255
        image = np.asarray(
            Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.BICUBIC)
        )
        images.append(np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8))
    return images


def test_fast_pdq_equals_the_reference(shared_data: Path) -> None:
    images = _photos(shared_data, 40) + _video_frames(shared_data) + _synthetic()
    distances, mirror_distances, quality_gaps = [], [], []
    for rgb in images:
        rgb = np.ascontiguousarray(rgb)
        reference, reference_quality = hash_pixels_dihedral(rgb)
        pdq, quality, mirrored = hash_frame(rgb, mirror=True)
        distances.append(pdq_distance(reference[0], pdq))
        mirror_distances.append(pdq_distance(reference[REFERENCE_MIRROR], mirrored))
        quality_gaps.append(abs(reference_quality - quality))
    # Float rounding may flip a coefficient sitting on the median, nothing more.
    assert max(distances) <= 2 and sum(d > 0 for d in distances) <= len(images) // 20
    assert max(mirror_distances) <= 2
    assert max(quality_gaps) <= 1


def test_fast_dihedral_variants_equal_the_reference(shared_data: Path) -> None:
    """All eight variants from one filtering, in pdqhash's order (a wrong symmetry would
    put a variant ~128 bits off)."""
    images = _photos(shared_data, 30) + _synthetic()
    distances, quality_gaps = [], []
    for rgb in images:
        rgb = np.ascontiguousarray(rgb)
        reference, reference_quality = hash_pixels_dihedral(rgb)
        variants, quality = hash_dihedral(rgb)
        assert len(variants) == 8
        distances += [pdq_distance(a, b) for a, b in zip(reference, variants, strict=True)]
        quality_gaps.append(abs(reference_quality - quality))
    assert max(distances) <= 2 and sum(d > 0 for d in distances) <= len(distances) // 20
    assert max(quality_gaps) <= 1


def test_mirror_is_omitted_unless_asked() -> None:
    rgb = _synthetic()[2]
    assert hash_frame(rgb)[2] == ""


def test_sample_weights_are_averages() -> None:
    # Every sampled position is a weighted mean of the pixels around it.
    for length in (1, 5, 64, 481, 1920):
        weights = sample_weights(length).toarray()
        assert weights.shape == (64, length)
        assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-5)
        assert (weights >= 0).all()


def test_luma_input_hashes_as_its_rgb() -> None:
    # A luma plane carries what PDQ reads of an RGB frame: the same hash up to rounding,
    # and a studio-range plane (16-235) reads the same once stretched.
    rgb = _synthetic()[2]
    luma = rgb.astype(np.float32) @ np.asarray([0.299, 0.587, 0.114], np.float32)
    full = np.round(luma).astype(np.uint8)[:, :, None]
    studio = np.round(16 + luma * 219 / 255).astype(np.uint8)[:, :, None]
    reference, quality, _ = hash_frame(rgb)
    for plane, studio_range in ((full, False), (studio, True)):
        pdq, plane_quality, _ = hash_frame(plane, studio_range=studio_range)
        assert pdq_distance(pdq, reference) <= 4
        assert abs(plane_quality - quality) <= 2
