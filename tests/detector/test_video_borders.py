"""Flat borders: found in any colour, cropped alike in original and copy, followed over time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ansim.benchmarks.video_dataset import letterbox, pillarbox, title_card
from ansim.detector.borders import CropBox, crop, detect_borders, smooth_crops, uniform_share
from ansim.detector.pdq import hash_pixels, pdq_distance
from PIL import Image

from tests.helpers import photo_like


def picture(tmp_path: Path, seed: int = 1, size=(320, 180)) -> np.ndarray:
    return np.asarray(Image.open(photo_like(tmp_path / f"p{seed}.png", seed, size)).convert("RGB"))


def test_no_border_on_a_plain_picture(tmp_path: Path) -> None:
    rgb = picture(tmp_path)
    assert detect_borders(rgb).is_full(*rgb.shape[:2])


def test_letterbox_black_and_pillarbox_coloured_are_cropped_back(tmp_path: Path) -> None:
    rgb = picture(tmp_path)
    original, _ = hash_pixels(rgb)
    for boxed in (letterbox(rgb, 0.2), pillarbox(rgb, 0.15, colour=(24, 40, 96))):
        box = detect_borders(boxed)
        assert (box.height, box.width) == rgb.shape[:2]
        cropped, _ = hash_pixels(np.ascontiguousarray(crop(boxed, box)))
        assert pdq_distance(original, cropped) == 0
        uncropped, _ = hash_pixels(boxed)
        assert pdq_distance(original, uncropped) > 31  # why cropping matters


def test_noisy_bars_and_both_kinds_at_once(tmp_path: Path) -> None:
    rgb = picture(tmp_path)
    boxed = pillarbox(letterbox(rgb, 0.1, colour=(250, 250, 250)), 0.1, colour=(10, 10, 10))
    noise = np.random.default_rng(0).integers(-6, 7, boxed.shape)
    noisy = np.clip(boxed.astype(int) + noise, 0, 255).astype(np.uint8)
    box = detect_borders(noisy)
    assert abs(box.height - rgb.shape[0]) <= 2 and abs(box.width - rgb.shape[1]) <= 2


def test_flat_frames_are_left_whole_and_marked_uniform(tmp_path: Path) -> None:
    black = np.zeros((90, 160, 3), dtype=np.uint8)
    assert detect_borders(black).is_full(90, 160)
    assert uniform_share(black) == 1.0
    card = title_card("A Production of Some Studio", 320, 180)
    assert uniform_share(card) >= 0.95
    assert uniform_share(picture(tmp_path)) < 0.5


def test_smoothing_keeps_bars_that_last_and_follows_a_change(tmp_path: Path) -> None:
    rgb = picture(tmp_path)
    boxed = letterbox(rgb, 0.2)
    frames = [(float(t), boxed) for t in range(5)]
    frames += [(float(t), pillarbox(rgb)) for t in range(5, 10)]
    boxes = [box for _, box in smooth_crops(frames, lambda f: f[1], lambda f: f[0])]
    assert boxes[0] == boxes[2] == detect_borders(boxed)
    assert boxes[9] == detect_borders(pillarbox(rgb))  # followed after the change
    assert all(isinstance(b, CropBox) for b in boxes) and len(boxes) == 10


def test_smoothing_does_not_crop_a_flat_edge_seen_in_one_frame_only(tmp_path: Path) -> None:
    rgb = picture(tmp_path)
    flat = rgb.copy()
    flat[:40] = (200, 200, 200)  # a ceiling and a floor filling the edges in one frame
    flat[-40:] = (90, 60, 30)
    frames = [(0.0, rgb), (1.0, flat), (2.0, rgb)]
    boxes = [box for _, box in smooth_crops(frames, lambda f: f[1], lambda f: f[0])]
    assert detect_borders(flat).top == 40
    assert boxes[1].top == 0


def test_a_flat_run_on_one_edge_only_is_content(tmp_path: Path) -> None:
    rgb = picture(tmp_path)
    one_sided = rgb.copy()
    one_sided[:, :50] = (240, 240, 240)  # a white wall on the left
    assert detect_borders(one_sided).is_full(*rgb.shape[:2])


def test_a_logo_stamped_over_one_bar_still_lets_both_bars_go(tmp_path: Path) -> None:
    rgb = picture(tmp_path)
    boxed = pillarbox(rgb, 0.1, colour=(0, 0, 0))
    stamped = boxed.copy()
    height, width = stamped.shape[:2]
    stamped[height * 3 // 4 : height - 4, width - 60 : width - 4] = (255, 200, 0)  # a badge
    assert detect_borders(stamped) == detect_borders(boxed)
    assert (detect_borders(stamped).height, detect_borders(stamped).width) == rgb.shape[:2]


def test_a_flat_edge_with_detail_at_one_end_is_not_a_bar_on_its_own(tmp_path: Path) -> None:
    rgb = picture(tmp_path)
    walls = rgb.copy()
    walls[:, :30] = (240, 240, 240)  # flat on both sides, but one side only at the top:
    walls[:100, -30:] = (240, 240, 240)  # neither side is plainly flat, so nothing pairs
    assert detect_borders(walls).is_full(*rgb.shape[:2])
