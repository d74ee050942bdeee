"""The time-aligned video match decision, on hand-made frame lists."""

from __future__ import annotations

import random

from ansim.detector.signals import FrameHash
from ansim.detector.video_match import (
    FramePair,
    VideoFrames,
    VideoMatchRules,
    VideoSide,
    align,
    compare_videos,
    format_time,
    vpdq_percentages,
)


def random_hash(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def flip_bits(pdq: str, count: int, rng: random.Random) -> str:
    value = int(pdq, 16)
    for bit in rng.sample(range(256), count):
        value ^= 1 << bit
    return f"{value:064x}"


def video(hashes: list[str], start: float = 0.0, step: float = 1.0) -> VideoFrames:
    frames = [FrameHash(h, 100, i, start + i * step) for i, h in enumerate(hashes)]
    return VideoFrames.plain(frames)


def test_format_time() -> None:
    assert format_time(3.2) == "0:03"
    assert format_time(730) == "12:10"
    assert format_time(3725) == "1:02:05"


def test_clip_inside_a_long_reference_matches_with_its_ranges() -> None:
    rng = random.Random(1)
    reference = [random_hash(rng) for _ in range(1200)]  # 20 minutes at 1 frame/s
    clip = [flip_bits(h, 12, rng) for h in reference[730:770]]
    found = compare_videos(video(clip), video(reference))
    assert found is not None and found.matched
    assert found.explanation().startswith("query 0:00-0:40 = reference 12:10-12:50")
    assert found.duration_s == 40 and found.query_share == 1.0


def test_five_seconds_is_enough_and_four_is_not_for_a_long_query() -> None:
    rng = random.Random(2)
    reference = [random_hash(rng) for _ in range(300)]
    unrelated = [random_hash(rng) for _ in range(60)]
    for shared, expected in ((5, True), (4, False)):
        query = unrelated[:30] + reference[100 : 100 + shared] + unrelated[30:]
        found = compare_videos(video(query), video(reference))
        assert found is not None and found.matched is expected, shared


def test_short_video_matches_by_share() -> None:
    rng = random.Random(3)
    reference = [random_hash(rng) for _ in range(4)]  # a 4 s video, copied whole
    found = compare_videos(video([flip_bits(h, 8, rng) for h in reference]), video(reference))
    assert found is not None and found.matched and found.duration_s == 4


def test_hits_scattered_in_time_do_not_add_up() -> None:
    """Shared frames at inconsistent offsets (a repeated logo, stock shots) are no match."""
    rng = random.Random(4)
    reference = [random_hash(rng) for _ in range(200)]
    query = [random_hash(rng) for _ in range(200)]
    for i in range(0, 200, 20):  # 10 coincidences, each at a different offset
        query[i] = reference[(i * 7 + 50) % 200]
    found = compare_videos(video(query), video(reference))
    assert found is not None and not found.matched and found.frames <= 2


def test_low_quality_and_uniform_frames_never_vote() -> None:
    rng = random.Random(5)
    reference = [random_hash(rng) for _ in range(30)]
    query_frames = [FrameHash(h, 100, i, float(i)) for i, h in enumerate(reference)]
    low = [FrameHash(f.pdq, 20, f.frame, f.timestamp) for f in query_frames]
    assert compare_videos(VideoFrames.plain(low), video(reference)) is None
    flat = VideoFrames(query_frames, [False] * 30, [""] * 30)
    assert compare_videos(flat, video(reference)) is None


def test_mirrored_query_is_aligned_too() -> None:
    rng = random.Random(6)
    reference = [random_hash(rng) for _ in range(20)]
    frames = [FrameHash(random_hash(rng), 100, i, float(i)) for i in range(20)]
    flipped = VideoFrames(frames, [True] * 20, reference)
    found = compare_videos(flipped, video(reference))
    assert found is not None and found.matched and found.mirrored


def test_speed_change_and_dense_reference() -> None:
    rng = random.Random(7)
    reference = [random_hash(rng) for _ in range(600)]  # 20 s hashed at every frame (30 fps)
    dense = video(reference, step=1 / 30)
    sped_up = [reference[min(599, round(i * 1.1 * 30))] for i in range(18)]  # 1 frame/s at 1.1x
    found = compare_videos(video(sped_up), dense)
    assert found is not None and found.matched and found.duration_s >= 15


def test_align_reports_offset_and_frames() -> None:
    pairs = [FramePair(t, t + 100.0, 4) for t in range(10)]
    side = VideoSide(1.0, 200.0)
    found = align("ref", pairs, VideoSide(1.0, 10.0), side, VideoMatchRules())
    assert found is not None and found.offset_s == 100.0 and found.frames == 10


def test_vpdq_percentages_follow_meta_rule() -> None:
    rng = random.Random(8)
    a = [random_hash(rng) for _ in range(10)]
    b = a[:5] + [random_hash(rng) for _ in range(15)]
    q, t = vpdq_percentages(video(a).frames, video(b).frames)
    assert (q, t) == (50.0, 25.0)
