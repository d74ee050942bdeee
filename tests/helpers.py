"""Small builders shared by tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def photo_like(path: Path, seed: int, size: tuple[int, int] = (320, 240)) -> Path:
    """A synthetic but structured image (soft blobs, hard-edged boxes, a little noise)
    that PDQ hashes with high quality and that survives resizing and JPEG like a photo."""
    rng = np.random.default_rng(seed)
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    canvas = np.zeros((height, width, 3))
    for _ in range(12):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(15, 90)
        colour = rng.uniform(0, 255, 3)
        weight = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * radius**2))
        canvas += weight[:, :, None] * colour
    for _ in range(6):
        x0, y0 = int(rng.uniform(0, width * 0.8)), int(rng.uniform(0, height * 0.8))
        x1, y1 = x0 + int(rng.uniform(20, width / 3)), y0 + int(rng.uniform(20, height / 3))
        canvas[y0:y1, x0:x1] = rng.uniform(0, 255, 3)
    canvas += rng.normal(0, 2, canvas.shape)
    Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).save(path)
    return path
