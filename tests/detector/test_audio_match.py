"""Audio matching on real recordings: a clip cut at a random point, through each kind of
repost edit, finds its recording and says where; unrelated and generic audio finds nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr
from ansim.benchmarks import audio_transforms as edits
from ansim.detector.audio import AudioFingerprint, fingerprint_file, fingerprint_samples
from ansim.detector.audio_decode import TARGET_RATE
from ansim.detector.audio_landmarks import query_variants
from ansim.detector.audio_match import AudioAlignment, matching_alignments, verify_candidates
from ansim.indexer.audio_index import AudioEntry, InvertedAudioIndex, QueryLandmarks

from tests.audio_helpers import (
    HELD_OUT,
    INDEXED,
    generic_beat,
    load_mono,
    recording,
    tone,
    write_video,
)

CLIP_SECONDS = 8.0


@pytest.fixture(scope="module")
def bank(shared_data: Path) -> InvertedAudioIndex:
    index = InvertedAudioIndex()
    for entry_id, name in enumerate(INDEXED):
        fingerprint = fingerprint_file(recording(shared_data, name))
        marks = fingerprint.landmarks()
        index.add(
            entry_id,
            AudioEntry(marks.hashes, marks.times, fingerprint.frames, fingerprint.pitches),
        )
    return index


def search(bank: InvertedAudioIndex, fingerprint: AudioFingerprint) -> list[AudioAlignment]:
    variants = query_variants(fingerprint.frames, fingerprint.pitches)
    votes = bank.vote([QueryLandmarks(m.hashes, m.times) for _, m in variants])
    return matching_alignments(
        fingerprint.frames, fingerprint.pitches, votes, [v for v, _ in variants], bank.peaks
    )


def search_samples(bank: InvertedAudioIndex, samples: np.ndarray, rate: int):
    mono = soxr.resample(samples, rate, TARGET_RATE) if rate != TARGET_RATE else samples
    return search(bank, fingerprint_samples(np.asarray(mono, dtype=np.float32)))


def random_clip(shared_data: Path, name: str, seed: int) -> tuple[np.ndarray, int, float]:
    samples, rate = load_mono(recording(shared_data, name))
    length = int(CLIP_SECONDS * rate)
    start = int(np.random.default_rng(seed).integers(0, len(samples) - length))
    return samples[start : start + length], rate, start / rate


def test_clip_at_random_offset_finds_its_place(bank, shared_data: Path) -> None:
    name = INDEXED[3]  # a 133 s song
    clip, rate, start = random_clip(shared_data, name, seed=17)
    found = search_samples(bank, clip, rate)
    assert [a.entry_id for a in found] == [INDEXED.index(name)]
    best = found[0]
    assert best.ref_start == pytest.approx(start + best.query_start, abs=0.15)
    assert best.ref_end - best.ref_start > CLIP_SECONDS - 1.5
    assert abs(best.time_scale - 1) < 0.005 and abs(best.pitch_shift) < 0.1
    assert "of the reference" in best.explanation()


BED = "glacier-bay-humpback.hq.ogg"  # held out of the bank


def _edits(shared_data: Path) -> dict[str, edits.Transform]:
    bed, bed_rate = load_mono(recording(shared_data, BED))
    return {
        "noise 5 dB": edits.white_noise(5),
        "noise 0 dB": edits.white_noise(0),
        "speed -5%": edits.speed(0.95),
        "speed +5%": edits.speed(1.05),
        "tempo +5%": edits.tempo(1.05),
        "pitch +1": edits.pitch(1.0),
        "pitch -1": edits.pitch(-1.0),
        "phone": edits.phone,
        "clipping": edits.clipping(18),
        "mixed at -10 dB": edits.mixed_with(bed, bed_rate, -10),
    }


EDIT_CASES = [
    ("noise 5 dB", 0),
    ("noise 0 dB", 4),
    ("speed -5%", 2),
    ("speed +5%", 5),
    ("tempo +5%", 1),
    ("pitch +1", 3),
    ("pitch -1", 4),
    ("phone", 1),
    ("clipping", 5),
    ("mixed at -10 dB", 2),
]


@pytest.mark.parametrize(("edit", "which"), EDIT_CASES)
def test_each_repost_edit_still_matches(bank, shared_data: Path, edit: str, which: int) -> None:
    name = INDEXED[which]
    clip, rate, _ = random_clip(shared_data, name, seed=which + len(edit))
    edited, edited_rate = _edits(shared_data)[edit](clip, rate, np.random.default_rng(1))
    found = search_samples(bank, edited, edited_rate)
    assert found and found[0].entry_id == INDEXED.index(name), edit
    assert len(found) == 1  # and nothing else
    if edit.startswith("speed"):
        factor = 0.95 if "-" in edit else 1.05
        assert found[0].time_scale == pytest.approx(1 / factor, abs=0.01)
        assert found[0].pitch_shift == pytest.approx(12 * np.log2(factor), abs=0.3)
    if edit.startswith("pitch"):
        assert found[0].pitch_shift == pytest.approx(1.0 if "+" in edit else -1.0, abs=0.3)


def test_mp3_reencode_through_the_real_decoder(bank, shared_data: Path, tmp_path: Path) -> None:
    clip, rate, _ = random_clip(shared_data, INDEXED[0], seed=8)
    path = tmp_path / "repost.mp3"
    path.write_bytes(edits.encode_mp3(clip, rate, 64_000))
    found = search(bank, fingerprint_file(path, "audio/mpeg"))
    assert [a.entry_id for a in found] == [0]


def test_low_quality_encode_matches_high_quality_reference(bank, shared_data: Path) -> None:
    # The shared data's own second encode: 22 kHz mono Vorbis ~40 kbit/s of the same song.
    path = recording(shared_data, INDEXED[4].replace(".hq.ogg", ".ogg"))
    found = search(bank, fingerprint_file(path))
    assert [a.entry_id for a in found] == [4] and found[0].peak_share > 0.5


def test_video_soundtrack_finds_audio_reference(bank, shared_data: Path, tmp_path: Path) -> None:
    clip, rate, start = random_clip(shared_data, INDEXED[2], seed=3)
    video = write_video(tmp_path / "repost.mp4", clip, rate, CLIP_SECONDS)
    found = search(bank, fingerprint_file(video, "video/mp4"))
    assert [a.entry_id for a in found] == [2]
    assert found[0].ref_start == pytest.approx(start + found[0].query_start, abs=0.2)


@pytest.mark.parametrize("name", HELD_OUT)
def test_unrelated_recordings_match_nothing(bank, shared_data: Path, name: str) -> None:
    for seed in range(3):
        clip, rate, _ = random_clip(shared_data, name, seed=seed)
        assert search_samples(bank, clip, rate) == []


def test_generic_beat_and_tone_match_nothing(bank) -> None:
    beat, rate = generic_beat(10.0)
    assert search_samples(bank, beat, rate) == []
    # A tone under a beat gets past the fingerprint's generic-audio check, not the match.
    mix = beat + 0.3 * soxr.resample(tone(10.0, 392.0, 16000), 16000, rate)[: len(beat)]
    assert search_samples(bank, mix.astype(np.float32), rate) == []


def test_tone_candidates_do_not_pass_the_rules(bank) -> None:
    """Even when a steady tone gathers votes, verification refuses it."""
    fingerprint = fingerprint_samples(soxr.resample(tone(8.0, 440.0, 16000), 16000, TARGET_RATE))
    variants = query_variants(fingerprint.frames, fingerprint.pitches)
    votes = bank.vote([QueryLandmarks(m.hashes, m.times) for _, m in variants])
    verified = verify_candidates(
        fingerprint.frames, fingerprint.pitches, votes, [v for v, _ in variants], bank.peaks
    )
    assert all(a.distinct_pitches < 5 or a.peak_share < 0.26 for a in verified)
