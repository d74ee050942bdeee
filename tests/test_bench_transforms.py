"""The simulated reposts: deterministic, the sizes they promise, readable by ansim."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from ansim.benchmarks.image_transforms import TRANSFORMS, select_transforms, transform_rng
from ansim.signal_types.hashing import hash_file
from PIL import Image


def textured_image(width: int = 240, height: int = 160, seed: int = 1) -> Image.Image:
    """Smooth random blobs: enough structure for PDQ quality well above 50."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(height // 16, width // 16, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)


def render(name: str, image: Image.Image, seed: int = 7, source: str = "a.png") -> Image.Image:
    data = TRANSFORMS[name].render(image, transform_rng(seed, source, name))
    return Image.open(BytesIO(data))


def test_every_transform_is_deterministic() -> None:
    image = textured_image()
    for name, transform in TRANSFORMS.items():
        first = transform.render(image, transform_rng(3, "x.jpg", name))
        second = transform.render(image, transform_rng(3, "x.jpg", name))
        assert first == second, name


def test_random_placement_depends_on_the_seed() -> None:
    image = textured_image()
    outputs = {render("crop_40", image, seed=s).tobytes() for s in range(6)}
    assert len(outputs) > 1


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("resize_0.5", (120, 80)),
        ("resize_0.25", (60, 40)),
        ("crop_5", (228, 152)),
        ("crop_10", (216, 144)),
        ("crop_20", (192, 128)),
        ("crop_40", (144, 96)),
        ("flip", (240, 160)),
        ("rotate_90", (160, 240)),
        ("rotate_5", (240, 160)),
        ("letterbox_pad", (240, 200)),
        ("jpeg_q30", (240, 160)),
        ("text_overlay", (240, 160)),
        ("emoji_logo_overlay", (240, 160)),
    ],
)
def test_transform_sizes(name: str, size: tuple[int, int]) -> None:
    assert render(name, textured_image()).size == size


def test_screenshot_embeds_the_whole_image_in_a_larger_canvas() -> None:
    image = textured_image()
    shot = render("screenshot", image).convert("RGB")
    assert shot.width > image.width and shot.height > image.height
    # The picture itself is pasted unchanged somewhere inside (PNG is lossless).
    pixels, original = np.asarray(shot), np.asarray(image)
    margin = image.width // 20
    found = any(
        np.array_equal(pixels[y : y + image.height, margin : margin + image.width], original)
        for y in range(shot.height - image.height + 1)
    )
    assert found


def test_flip_and_rotate_move_pixels_exactly() -> None:
    image = textured_image()
    original = np.asarray(image)
    assert np.array_equal(np.asarray(render("flip", image)), original[:, ::-1])
    assert np.array_equal(np.asarray(render("rotate_90", image)), np.rot90(original))


def test_jpeg_transforms_write_jpeg_at_their_quality() -> None:
    image = textured_image()
    sizes = []
    for name in ("jpeg_q30", "jpeg_q50", "jpeg_q75"):
        data = TRANSFORMS[name].render(image, transform_rng(0, "a", name))
        assert Image.open(BytesIO(data)).format == "JPEG"
        sizes.append(len(data))
    assert sizes == sorted(sizes)  # more quality, more bytes
    assert render("blur", image).format == "PNG"


def test_every_copy_is_fingerprinted_by_ansim(tmp_path: Path) -> None:
    image = textured_image(400, 300)
    for name, transform in TRANSFORMS.items():
        path = tmp_path / f"{name}{transform.suffix}"
        path.write_bytes(transform.render(image, transform_rng(0, "a", name)))
        signals = hash_file(path)
        assert len(signals.pdq_dihedral) == 8, name


def test_unknown_transform_names_are_refused() -> None:
    assert [t.name for t in select_transforms(["flip", "blur"])] == ["flip", "blur"]
    with pytest.raises(ValueError, match="unknown transform"):
        select_transforms(["flip", "sepia"])
