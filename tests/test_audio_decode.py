"""Audio decoding and fingerprinting: both decoders, streaming, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr
from ansim.detector.audio import (
    AudioFingerprint,
    AudioOptions,
    fingerprint_file,
    fingerprint_samples,
)
from ansim.detector.audio_decode import TARGET_RATE, DecodeOptions, DecodeReport, decode_mono
from ansim.detector.audio_peaks import PeakStream
from ansim.detector.errors import LowQuality, MediaError, UnsupportedMedia
from ansim.signal_types.hashing import hash_file

from tests.audio_helpers import (
    load_mono,
    recording,
    tone,
    wav_header,
    write_video,
    write_wav,
)

FISHIN_HQ = "Karissa_Hobbs_-_Lets_Go_Fishin.hq.ogg"
TRUMPET = "sorohanro_-_solo-trumpet-06.hq.ogg"


def test_libsndfile_and_ffmpeg_decode_the_same_audio(shared_data: Path) -> None:
    path = recording(shared_data, TRUMPET)
    via_soundfile, report_sf = DecodeReport(), DecodeReport()
    a = np.concatenate(list(decode_mono(path, "audio/ogg", report=report_sf)))
    b = np.concatenate(list(decode_mono(path, "video/mp4", report=via_soundfile)))
    assert report_sf.decoder == "libsndfile" and via_soundfile.decoder == "ffmpeg/vorbis"
    assert (report_sf.source_rate, report_sf.source_channels) == (44100, 2)
    assert abs(len(a) - len(b)) <= TARGET_RATE // 100
    n = min(len(a), len(b))
    assert np.corrcoef(a[:n], b[:n])[0, 1] > 0.99


def test_chunked_peaks_equal_whole_signal_peaks(shared_data: Path) -> None:
    samples, rate = load_mono(recording(shared_data, TRUMPET))
    mono = soxr.resample(samples, rate, TARGET_RATE).astype(np.float32)
    whole = fingerprint_samples(mono)
    stream = PeakStream()
    rng = np.random.default_rng(5)
    position = 0
    while position < len(mono):
        size = int(rng.integers(300, 9000))  # odd sizes, some shorter than one FFT frame
        stream.feed(mono[position : position + size])
        position += size
    frames, pitches = stream.finish()
    np.testing.assert_array_equal(frames, whole.frames)
    np.testing.assert_allclose(pitches, whole.pitches, atol=1e-3)


def test_hash_file_reports_count_and_duration(shared_data: Path) -> None:
    signals = hash_file(recording(shared_data, FISHIN_HQ))
    assert signals.modality == "audio"
    summary = signals.summary()["audio"]
    assert summary["duration_s"] == pytest.approx(133.0, abs=0.1)
    # About 30 peaks and a few hundred landmarks a second of music.
    assert 20 * 133 < summary["peaks"] <= 31 * 133
    assert summary["landmarks"] > 150 * 133


def test_blob_round_trip(shared_data: Path) -> None:
    fingerprint = fingerprint_file(recording(shared_data, TRUMPET))
    again = AudioFingerprint.from_blob(fingerprint.to_blob())
    np.testing.assert_array_equal(again.frames, fingerprint.frames)
    np.testing.assert_allclose(again.pitches, fingerprint.pitches, atol=1 / 64)
    assert again.duration == fingerprint.duration
    assert again.landmark_count == fingerprint.landmark_count
    with pytest.raises(ValueError):
        AudioFingerprint.from_blob(fingerprint.to_blob()[:-3])
    with pytest.raises(ValueError):
        AudioFingerprint.from_blob(b"XXXX" + fingerprint.to_blob()[4:])


def test_video_soundtrack_is_fingerprinted(tmp_path: Path, shared_data: Path) -> None:
    samples, rate = load_mono(recording(shared_data, TRUMPET))
    video = write_video(tmp_path / "clip.mp4", samples, rate, len(samples) / rate)
    signals = hash_file(video)
    assert signals.modality == "video"
    assert signals.summary()["audio"]["duration_s"] == pytest.approx(5.3, abs=0.1)


def test_long_input_is_cut_at_the_cap_with_a_warning(shared_data: Path) -> None:
    options = AudioOptions(decode=DecodeOptions(max_seconds=20.0))
    fingerprint = fingerprint_file(recording(shared_data, FISHIN_HQ), "audio/ogg", options)
    assert fingerprint.duration == pytest.approx(20.0, abs=0.01)
    assert fingerprint.truncated_at == 20.0
    assert any("only that much" in w for w in fingerprint.warnings)


# ---------------------------------------------------------------- bad input


def test_silence_is_too_generic(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "silence.wav", np.zeros(16000 * 5, dtype=np.float32), 16000)
    with pytest.raises(LowQuality, match="silence"):
        hash_file(path)


def test_steady_tone_is_too_generic(tmp_path: Path) -> None:
    with pytest.raises(LowQuality):
        hash_file(write_wav(tmp_path / "tone.wav", tone(5.0), 16000))


def test_sub_second_clip_is_refused(tmp_path: Path, shared_data: Path) -> None:
    samples, rate = load_mono(recording(shared_data, TRUMPET))
    path = write_wav(tmp_path / "short.wav", samples[: rate // 2], rate)
    with pytest.raises(MediaError, match="at least 1 s"):
        hash_file(path)


def test_zero_length_audio(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(wav_header(16000, 1, 0))
    with pytest.raises(MediaError, match="zero length|no samples"):
        hash_file(path)


@pytest.mark.parametrize(
    ("rate", "channels", "message"),
    [(3, 1, "sample rate"), (5_000_000, 1, "sample rate"), (16000, 1000, "channels")],
)
def test_absurd_formats_are_refused(tmp_path: Path, rate: int, channels: int, message: str) -> None:
    data = np.zeros(4096 * channels, dtype="<i2").tobytes()
    path = tmp_path / "absurd.wav"
    path.write_bytes(wav_header(rate, channels, len(data)) + data)
    with pytest.raises(MediaError, match=message):
        hash_file(path)


def test_corrupt_and_truncated_files(tmp_path: Path, shared_data: Path) -> None:
    original = recording(shared_data, FISHIN_HQ).read_bytes()
    garbage = tmp_path / "garbage.ogg"
    garbage.write_bytes(original[:64] + bytes(np.random.default_rng(1).integers(0, 256, 50_000)))
    with pytest.raises(MediaError):
        hash_file(garbage)
    # A file cut in half still fingerprints what is there.
    half = tmp_path / "half.ogg"
    half.write_bytes(original[: len(original) // 2])
    fingerprint = hash_file(half).extra["audio"]
    assert 40 < fingerprint.duration < 100


def test_video_without_audio_stream(shared_data: Path) -> None:
    video = shared_data / "threatexchange/tmk/sample-videos/test-padded-dimensions.mp4"
    if not video.is_file():
        pytest.skip("sample video missing")
    with pytest.raises(MediaError, match="no audio stream"):
        fingerprint_file(video, "video/mp4", AudioOptions())
    # The video itself is still fingerprinted by its frames, with the missing sound noted.
    signals = hash_file(video)
    assert signals.modality == "video" and "audio" not in signals.extra
    assert any("no audio stream" in warning for warning in signals.warnings)


def test_not_audio_at_all(tmp_path: Path) -> None:
    path = tmp_path / "fake.mp3"
    path.write_bytes(b"ID3" + b"\x00" * 7 + b"this is not an mp3 stream at all" * 100)
    with pytest.raises((MediaError, UnsupportedMedia)):
        hash_file(path)
