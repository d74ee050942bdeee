"""Hashing real (small, synthesized) video files: sampling, signals, and bad input."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from ansim.benchmarks.video_dataset import EncodeSettings, Transform, apply_transform, write_video
from ansim.detector.errors import LowQuality, MediaError
from ansim.detector.hashing import HashOptions
from ansim.detector.pdq import hash_pixels, pdq_distance
from ansim.detector.pdq_fast import hash_frame
from ansim.detector.video import (
    VideoOptions,
    _KeyframeSkip,
    hash_video,
    iter_sampled_frames,
    reference_options,
)
from ansim.detector.video_match import VideoFrames, compare_videos
from ansim.signal_types.hashing import hash_file
from PIL import Image

from tests.video_media import photos, slideshow


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("video-media")
    stills = photos(folder / "stills", 6)
    slideshow(folder / "show.mp4", stills, duration_s=12, fps=10, seed=1)
    return folder


def frames_of(hashes) -> VideoFrames:
    return VideoFrames(hashes.frames, [not u for u in hashes.uniform], hashes.mirrored)


def test_hash_file_gives_vpdq_signals(media: Path) -> None:
    signals = hash_file(media / "show.mp4", HashOptions(video=VideoOptions(min_frames=0)))
    assert signals.modality == "video" and signals.mime == "video/mp4"
    vpdq = signals.summary()["vpdq"]
    assert [f["timestamp"] for f in vpdq] == [float(t) for t in range(12)]
    assert [f["frame"] for f in vpdq] == [10 * t for t in range(12)]
    assert set(vpdq[0]) == {"frame", "quality", "pdq", "timestamp"}
    assert signals.pdq and all(f.quality >= 50 for f in signals.pdq)  # the bank's frames


def test_short_videos_get_at_least_min_frames(media: Path) -> None:
    hashes = hash_video(media / "show.mp4")  # 12 s: sampled every 0.5 s, not every 1 s
    assert len(hashes.frames) == 24 and hashes.seconds_per_hash == 0.5


def test_sampling_rate_every_frame_and_half_seconds(media: Path) -> None:
    every = hash_video(media / "show.mp4", VideoOptions(seconds_per_hash=0))
    assert len(every.frames) == 120 and every.frames[7].frame == 7
    half = hash_video(media / "show.mp4", VideoOptions(seconds_per_hash=0.5))
    assert len(half.frames) == 24
    # Skipping undecoded (non-reference) frames moves a sample by at most a frame or two.
    by_time = {f.timestamp: f.pdq for f in every.frames}
    for sampled in half.frames:
        assert min(abs(sampled.timestamp - t) for t in by_time) < 1e-3


def test_keyframe_skipping_keeps_the_samples(media: Path, tmp_path: Path) -> None:
    # Keyframes every second, a sample every two: half of each second is never decoded,
    # and every sample is the same picture (the same hash) as with full decoding.
    stills = photos(tmp_path / "stills", 3)
    video = slideshow(tmp_path / "gop.mp4", stills, duration_s=12, fps=10, keyframe_every_s=1)
    sparse = VideoOptions(seconds_per_hash=2, min_frames=0, crop_borders=False)
    skipped = hash_video(video, sparse)
    decoded = hash_video(video, replace(sparse, skip_to_keyframes=False))
    assert [(f.timestamp, f.pdq) for f in skipped.frames] == [
        (f.timestamp, f.pdq) for f in decoded.frames
    ]
    assert len(skipped.frames) == 6


def test_keyframe_skip_decodes_from_the_last_keyframe_before_the_due_time(
    tmp_path: Path,
) -> None:
    stills = photos(tmp_path / "stills", 2)
    video = slideshow(tmp_path / "gop.mp4", stills, duration_s=6, fps=10, keyframe_every_s=1)
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
        gate = _KeyframeSkip(stream.time_base)
        assert gate.offer(packets[0]) == [packets[0]]
        origin = float(packets[0].pts * stream.time_base)
        gate.hold_until(origin + 2.5)
        released = [q for p in packets[1:] for q in gate.offer(p)]
    first = released[0]
    assert first.is_keyframe and abs(float(first.pts * stream.time_base) - origin - 2.0) < 1e-6
    assert gate.dropped == 19  # frames 0.1 s to 1.9 s
    # Once the due time passed, everything after is decoded.
    assert len(released) == len(packets) - 1 - gate.dropped


def test_sampled_frames_are_hashed_from_the_luma_plane(media: Path) -> None:
    sampled = VideoOptions(seconds_per_hash=1, min_frames=0)
    first = next(iter_sampled_frames(media / "show.mp4", sampled))
    assert first.pixels.shape[2] == 1 and first.studio_range
    luma = hash_video(media / "show.mp4", sampled)
    rgb = hash_video(media / "show.mp4", replace(sampled, luma_plane=False))
    pairs = list(zip(luma.frames, rgb.frames, strict=True))
    distances = [pdq_distance(a.pdq, b.pdq) for a, b in pairs]
    # The same picture: only the decoder's RGB conversion (rounding, clipping) differs.
    assert sum(distances) / len(distances) <= 3 and max(distances) <= 16
    assert all(abs(a.quality - b.quality) <= 5 for a, b in pairs)
    assert luma.uniform == rgb.uniform and luma.crops == rgb.crops


def test_every_frame_mode_hashes_rgb_like_vpdq(media: Path) -> None:
    first = next(iter_sampled_frames(media / "show.mp4", VideoOptions(seconds_per_hash=0)))
    assert first.pixels.shape[2] == 3 and not first.studio_range


def test_frame_mirror_hash_is_the_left_right_flip(media: Path) -> None:
    rgb = next(iter_sampled_frames(media / "show.mp4", VideoOptions(seconds_per_hash=0))).pixels
    _, _, mirrored = hash_frame(np.ascontiguousarray(rgb), mirror=True)
    flipped, _ = hash_pixels(np.ascontiguousarray(rgb[:, ::-1]))
    assert pdq_distance(mirrored, flipped) <= 16


@pytest.mark.parametrize("name", ["letterbox", "pillarbox", "hflip", "grayscale"])
def test_copies_match_their_original(media: Path, name: str) -> None:
    from ansim.benchmarks.video_dataset import TRANSFORMS

    copy = apply_transform(media / "show.mp4", media / f"{name}.mp4", TRANSFORMS[name])
    found = compare_videos(frames_of(hash_video(copy)), frames_of(hash_video(media / "show.mp4")))
    assert found is not None and found.matched, name
    assert found.mirrored is (name == "hflip")


@pytest.mark.parametrize("name", ["crop_10pct", "logo", "speed_1.1x"])
def test_copies_match_a_reference_hashed_as_references_are(media: Path, name: str) -> None:
    from ansim.benchmarks.video_dataset import TRANSFORMS

    reference = hash_video(media / "show.mp4", reference_options())
    copy = apply_transform(media / "show.mp4", media / f"{name}.mp4", TRANSFORMS[name])
    found = compare_videos(VideoFrames.of(hash_video(copy)), VideoFrames.of(reference))
    assert found is not None and found.matched, name


def test_references_keep_every_frame_that_moved(media: Path) -> None:
    every = hash_video(media / "show.mp4", VideoOptions(seconds_per_hash=0, mirror=False))
    kept = hash_video(media / "show.mp4", reference_options())
    assert len(kept.frames) < len(every.frames)
    stamps = [f.timestamp for f in kept.frames]
    assert max(b - a for a, b in zip(stamps, stamps[1:], strict=False)) <= 0.5 + 0.1 + 1e-6
    kept_hashes = [f.pdq for f in kept.frames]
    for frame in every.frames:  # every frame lies within the dedup bits of a kept frame
        assert min(pdq_distance(frame.pdq, k) for k in kept_hashes) <= 8
    assert all(len(v) == 4 for v in kept.cropped)  # centred and one-axis crops
    assert kept.mirrored == [""] * len(kept.frames)  # the bank holds one orientation


def test_skipping_the_loop_filter_moves_hashes_a_few_bits(media: Path) -> None:
    fast = hash_video(media / "show.mp4", VideoOptions(min_frames=0))
    exact = hash_video(media / "show.mp4", VideoOptions(min_frames=0, skip_loop_filter=False))
    distances = [pdq_distance(a.pdq, b.pdq) for a, b in zip(fast.frames, exact.frames, strict=True)]
    assert np.mean(distances) <= 6 and max(distances) <= 16


def test_variable_frame_rate_uses_real_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stamps_ms = [0, 100, 150, 900, 1000, 1950, 2100, 3050]
        rng = np.random.default_rng(0)
        for stamp in stamps_ms:
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (96, 128, 3), np.uint8))
            frame.pts, frame.time_base = stamp, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    hashes = hash_video(path, VideoOptions(seconds_per_hash=1.0, min_frames=0))
    assert [f.timestamp for f in hashes.frames] == [0.0, 1.0, 2.1, 3.05]


def test_broken_timestamps_are_repaired_with_a_warning(media: Path, tmp_path: Path) -> None:
    raw = tmp_path / "stream.h264"  # an elementary stream has no timestamps to trust
    with av.open(str(media / "show.mp4")) as source, av.open(str(raw), "w", format="h264") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.pts = packet.dts = None
                packet.stream = stream
                out.mux(packet)
    hashes = hash_video(raw, VideoOptions(seconds_per_hash=0))
    stamps = [f.timestamp for f in hashes.frames]
    assert len(stamps) == 120 and stamps == sorted(stamps) and len(set(stamps)) == 120
    assert any("missing or backward timestamps" in w for w in hashes.warnings)


# ---- bad input: a clear MediaError or a best-effort hash with a warning, never a crash --------


def test_corrupt_container_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(range(256)) * 40)
    with pytest.raises(MediaError, match="video"):
        hash_file(path)


def test_truncated_files(media: Path, tmp_path: Path) -> None:
    data = (media / "show.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # moov atom at the end is lost: unreadable
    with pytest.raises(MediaError):
        hash_file(cut)
    streamable = tmp_path / "faststart.mp4"
    with (
        av.open(str(media / "show.mp4")) as source,
        av.open(str(streamable), "w", options={"movflags": "faststart"}) as out,
    ):
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    data = streamable.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])  # index first, media cut: best effort
    hashes = hash_video(cut, VideoOptions(min_frames=0))
    assert 3 <= len(hashes.frames) < 12


def test_file_with_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = np.zeros((1, 16000), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(MediaError, match="no video stream"):
        hash_video(path)


def test_zero_length_video(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
    with pytest.raises(MediaError):
        hash_video(path)


def test_single_frame_and_black_videos(tmp_path: Path) -> None:
    still = np.asarray(Image.open(photos(tmp_path, 1)[0]).convert("RGB"))
    one = write_video(tmp_path / "one.mp4", [still[:160, :240]], EncodeSettings(fps=25))
    hashes = hash_video(one, VideoOptions(seconds_per_hash=0))
    assert len(hashes.frames) == 1 and any("one frame" in w for w in hashes.warnings)
    black_frames = [np.zeros((64, 64, 3), np.uint8)] * 30
    black = write_video(tmp_path / "black.mp4", black_frames, EncodeSettings())
    with pytest.raises(LowQuality, match="detailed enough"):
        hash_file(black)


def test_resolution_and_duration_caps(media: Path) -> None:
    with pytest.raises(MediaError, match="over the limit"):
        hash_video(media / "show.mp4", VideoOptions(max_frame_pixels=100 * 100))
    with pytest.raises(MediaError, match="declares 12 s"):
        hash_video(media / "show.mp4", VideoOptions(max_duration_s=5))
    with pytest.raises(MediaError, match="time limit"):  # a wall-clock budget, even at once
        hash_file(media / "show.mp4", HashOptions(video=VideoOptions(max_decode_s=0.0)))


def test_transform_clip_and_speed_build_the_expected_lengths(media: Path) -> None:
    exact = VideoOptions(min_frames=0)
    clip = apply_transform(media / "show.mp4", media / "clip5.mp4", Transform("c", clip_s=5.0))
    assert len(hash_video(clip, exact).frames) == 5
    fast = apply_transform(media / "show.mp4", media / "fast.mp4", Transform("s", speed=1.2))
    assert len(hash_video(fast, exact).frames) == 10
