"""Interoperability with Meta's vPDQ: its sample hashes of the TMK sample videos.

Hashing every frame with cropping off, each video must match Meta's hash file under
vPDQ's rule (distance <= 31, quality >= 50, both match percentages >= 80%). Two short
videos run here; `ansim bench video` runs all fourteen and reports the distances.
With cropping on, the letterboxed (`-bar`) copies match the no-bar originals, which vPDQ
itself matches at 0%.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ansim.detector.pdq import pdq_distance
from ansim.detector.video import VideoOptions, hash_video
from ansim.detector.video_match import VideoFrames, compare_videos, vpdq_percentages
from ansim.detector.vpdq_format import read_vpdq_file

EXACT = VideoOptions(seconds_per_hash=0, crop_borders=False, mirror=False, max_hash_side=0)


def sample(shared_data: Path, video: str, hashes: str) -> tuple[Path, Path]:
    video_path = shared_data / f"threatexchange/tmk/sample-videos/{video}.mp4"
    hash_path = shared_data / f"threatexchange/vpdq/sample-hashes/{hashes}.txt"
    for path in (video_path, hash_path):
        if not path.exists():
            pytest.skip(f"missing {path}")
    return video_path, hash_path


@pytest.mark.parametrize("name", ["doorknob-hd-no-bar", "pattern-sd-grey-bar"])
def test_every_frame_matches_meta_hashes(shared_data: Path, name: str) -> None:
    video_path, hash_path = sample(shared_data, name, name)
    ours = hash_video(video_path, EXACT).frames
    theirs = read_vpdq_file(hash_path)
    assert len(ours) == len(theirs)
    assert [f.frame for f in ours] == [f.frame for f in theirs]
    assert all(abs(a.timestamp - b.timestamp) < 1e-3 for a, b in zip(ours, theirs, strict=True))
    query_percent, target_percent = vpdq_percentages(ours, theirs)
    assert query_percent >= 80 and target_percent >= 80
    distances = [
        pdq_distance(a.pdq, b.pdq) for a, b in zip(ours, theirs, strict=True) if b.quality >= 50
    ]
    print(f"{name}: mean {np.mean(distances):.2f}, max {max(distances)} bits per frame")
    assert np.mean(distances) <= 8


@pytest.mark.parametrize(
    "bar, no_bar",
    [
        ("chair-orig-22-sd-bar", "chair-orig-22-hd-no-bar"),
        ("pattern-sd-grey-bar", "pattern-hd-no-bar"),
    ],
)
def test_letterboxed_copy_matches_the_original(shared_data: Path, bar: str, no_bar: str) -> None:
    video_path, hash_path = sample(shared_data, bar, no_bar)
    original = read_vpdq_file(hash_path)  # Meta's hashes of the video without bars
    straight = hash_video(video_path, VideoOptions(crop_borders=False, mirror=False))
    assert vpdq_percentages(straight.frames, original)[0] < 10  # vPDQ's own result: no match
    cropped = hash_video(video_path)
    assert {c.width for c in cropped.crops if c} == {416}  # 480 wide minus two 32 px pillars
    assert vpdq_percentages(cropped.frames, original)[0] >= 80
    found = compare_videos(
        VideoFrames(cropped.frames, [not u for u in cropped.uniform], cropped.mirrored),
        VideoFrames.plain(original),
    )
    assert found is not None and found.matched and found.query_share >= 0.8
