"""Small real video files for the video tests: slideshows of synthetic photos, encoded H.264."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ansim.benchmarks.video_dataset import EncodeSettings, SlideshowSpec, synthesize_slideshow

from tests.helpers import photo_like


def photos(
    folder: Path, count: int, first_seed: int = 0, size: tuple[int, int] = (320, 240)
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [
        photo_like(folder / f"photo{first_seed + i}.png", seed=first_seed + i, size=size)
        for i in range(count)
    ]


def slideshow(
    path: Path,
    stills: list[Path],
    duration_s: float,
    fps: float = 5.0,
    size: tuple[int, int] = (192, 108),
    seconds_per_shot: float = 4.0,
    seed: int = 0,
    intro: list[np.ndarray] | tuple = (),
    keyframe_every_s: float = 4.0,
) -> Path:
    spec = SlideshowSpec(
        width=size[0],
        height=size[1],
        duration_s=duration_s,
        seconds_per_shot=seconds_per_shot,
        encode=EncodeSettings(fps=fps, gop=round(keyframe_every_s * fps)),
    )
    return synthesize_slideshow(stills, path, spec, seed=seed, intro=intro)
