"""Clips of a long reference, thumbnails of its frames, and unrelated videos that share
an intro, through the real PDQ bank (FAISS) and the time-aligned decision."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from ansim.benchmarks.video_dataset import cut_clip, intro_frames
from ansim.detector.video import VideoHashes, hash_video
from ansim.detector.video_match import (
    FrameHit,
    VideoFrames,
    VideoMatchRules,
    VideoSide,
    align_hits,
    compare_videos,
    format_time,
)
from ansim.indexer.pdq_index import FaissPdqIndex
from ansim.signal_types.hashing import hash_file

from tests.video_media import photos, slideshow

LONG_S = 20 * 60


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-minute reference: 200 six-second shots of different pictures, small and at 4 fps."""
    folder = tmp_path_factory.mktemp("long-video")
    stills = photos(folder / "stills", 200, size=(160, 120))
    return slideshow(
        folder / "long.mp4", stills, LONG_S, fps=4, size=(160, 90), seconds_per_shot=6, seed=3
    )


@pytest.fixture(scope="module")
def long_hashes(long_video: Path) -> VideoHashes:
    return hash_video(long_video)


def as_frames(hashes: VideoHashes) -> VideoFrames:
    return VideoFrames(hashes.frames, [not u for u in hashes.uniform], hashes.mirrored)


def test_ten_second_clip_found_through_the_bank(
    long_video: Path, long_hashes: VideoHashes, tmp_path: Path
) -> None:
    reference = long_hashes
    assert len(reference.frames) == LONG_S
    bank = FaissPdqIndex()
    usable = reference.usable()
    bank.add(list(range(len(usable))), [f.pdq for f in usable])
    time_of = {i: f.timestamp for i, f in enumerate(usable)}

    clip = hash_video(cut_clip(long_video, tmp_path / "clip.mp4", start_s=730.4, length_s=10))
    found = bank.search([f.pdq for f in clip.frames], 31)
    hits = [[FrameHit("long", time_of[h.entry_id], h.distance) for h in hs] for hs in found]
    reference_side = VideoSide(1.0, len(usable) * 1.0)
    query_side = VideoSide.of(clip.frames)
    alignment = align_hits(
        clip.frames, [True] * len(clip.frames), hits, query_side, {"long": reference_side}
    )[0]
    assert alignment.matched and alignment.duration_s >= 5
    assert 729 <= alignment.reference_start <= 732 and alignment.query_start <= 1.5
    assert f"= reference {format_time(alignment.reference_start)}" in alignment.explanation()
    assert "12:1" in alignment.explanation()


def test_five_second_clip_from_the_end_matches(
    long_video: Path, long_hashes: VideoHashes, tmp_path: Path
) -> None:
    clip = hash_video(cut_clip(long_video, tmp_path / "end.mp4", start_s=LONG_S - 7, length_s=5))
    found = compare_videos(as_frames(clip), as_frames(long_hashes))
    assert found is not None and found.matched and found.reference_start >= LONG_S - 10


def test_thumbnail_finds_its_frame_and_time(
    long_video: Path, long_hashes: VideoHashes, tmp_path: Path
) -> None:
    reference = long_hashes.usable()
    bank = FaissPdqIndex()
    bank.add(list(range(len(reference))), [f.pdq for f in reference])
    with av.open(str(long_video)) as container:
        frame = next(f for f in container.decode(video=0) if f.time >= 615.0)
    thumbnail = tmp_path / "thumb.jpg"  # the video is thumbnail-sized already
    frame.to_image().save(thumbnail, quality=85)
    signals = hash_file(thumbnail)
    hits = bank.search(signals.pdq_dihedral[:1], 31)[0]
    assert hits, "the thumbnail matched no frame"
    best = reference[min(hits).entry_id]
    assert abs(best.timestamp - 615.0) <= 2.0


def test_unrelated_videos_sharing_black_and_title_frames_do_not_match(tmp_path: Path) -> None:
    intro = intro_frames("A Production of Some Studio", 192, 108, fps=5, seconds=14)
    first = slideshow(tmp_path / "a.mp4", photos(tmp_path / "a", 4, 0), 16, intro=intro, seed=1)
    second = slideshow(tmp_path / "b.mp4", photos(tmp_path / "b", 4, 50), 16, intro=intro, seed=2)
    a, b = hash_video(first), hash_video(second)
    assert sum(a.uniform) >= 12  # black and title frames were hashed but marked
    found = compare_videos(as_frames(a), as_frames(b))
    assert found is None or not found.matched
    # What the marks prevent: counted as evidence, the shared intro would be a match.
    unmarked = compare_videos(VideoFrames.plain(a.frames), VideoFrames.plain(b.frames))
    assert unmarked is not None and unmarked.matched
    assert compare_videos(as_frames(a), as_frames(a)).matched  # sanity: itself matches


def test_rules_are_configurable(long_video: Path, long_hashes: VideoHashes, tmp_path: Path) -> None:
    clip = hash_video(cut_clip(long_video, tmp_path / "c.mp4", start_s=100.2, length_s=10))
    reference = as_frames(long_hashes)
    strict = VideoMatchRules(min_duration_s=60, min_share=1.01)
    assert compare_videos(as_frames(clip), reference).matched
    assert not compare_videos(as_frames(clip), reference, strict).matched
