"""`ansim bench audio`: recall per repost edit, precision, speed and index size, beside
Chromaprint's fpcalc on the very same clip files.

References are the recordings under --data (one per recording: the higher-quality encode
when both exist), less the held-out ones, plus generated filler music that grows the index.
Queries are 5 s and 10 s clips cut at random offsets from each indexed recording and put
through every edit; distractor clips are cut the same way from the held-out recordings
(never indexed), so any match they get is a false positive. Every clip is written to a
file (WAV, or MP3 for the re-encode) and read back through the real decoders.

Chromaprint side: fpcalc fingerprints every reference and clip (raw 32-bit frames); a
clip matches the reference whose frames, slid across, give the lowest bit error rate,
if it is below `FPCALC_MAX_BER` (0.35, the usual cut for Chromaprint frame comparison).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import soundfile
import soxr
from ansim.benchmarks import audio_transforms as edits
from ansim.detector.audio import AudioFingerprint, fingerprint_file, fingerprint_samples
from ansim.detector.audio_decode import TARGET_RATE
from ansim.detector.audio_landmarks import query_variants
from ansim.detector.audio_match import AudioAlignment, AudioMatchRules, verify_candidates
from ansim.detector.errors import MediaError
from ansim.indexer.audio_index import AudioEntry, InvertedAudioIndex, QueryLandmarks

WORK_RATE = 22050  # clips are cut and edited at this rate, then written to files
CLIP_SECONDS = (5.0, 10.0)
DEFAULT_HELD_OUT = ("3436-172162-0000", "glacier-bay-humpback")
FPCALC_MAX_BER = 0.35
AUDIO_SUFFIXES = {".ogg", ".wav", ".flac", ".mp3", ".m4a", ".opus", ".aac"}


@dataclass(frozen=True)
class BenchConfig:
    data: Path
    out: Path
    held_out: tuple[str, ...] = DEFAULT_HELD_OUT
    filler_minutes: float = 30.0
    clips_per_length: int = 2
    seed: int = 0
    use_fpcalc: bool = True
    only_edits: tuple[str, ...] = ()
    rules: AudioMatchRules = AudioMatchRules()


@dataclass
class Recording:
    name: str
    path: Path
    samples: np.ndarray  # mono at WORK_RATE

    @property
    def seconds(self) -> float:
        return len(self.samples) / WORK_RATE


@dataclass
class Tally:
    queries: int = 0
    correct: int = 0
    wrong: int = 0  # matched some other reference
    fpcalc_correct: int = 0
    fpcalc_wrong: int = 0
    fpcalc_failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "recall": self.correct / self.queries if self.queries else None,
            "false_matches": self.wrong,
            "fpcalc_recall": self.fpcalc_correct / self.queries if self.queries else None,
            "fpcalc_false_matches": self.fpcalc_wrong,
            "fpcalc_failed": self.fpcalc_failed,
        }


@dataclass
class Timings:
    fingerprint_audio_s: float = 0.0
    fingerprint_cpu_s: float = 0.0
    query_audio_s: float = 0.0
    query_cpu_s: float = 0.0


def edit_suite(bed: Recording) -> dict[str, tuple[edits.Transform, str]]:
    """Edit name -> (transform, file format)."""
    return {
        "clean": (edits.clean, "wav"),
        "mp3 64k": (edits.clean, "mp3"),
        "noise 10 dB": (edits.white_noise(10), "wav"),
        "noise 5 dB": (edits.white_noise(5), "wav"),
        "noise 0 dB": (edits.white_noise(0), "wav"),
        "speed -2%": (edits.speed(0.98), "wav"),
        "speed +2%": (edits.speed(1.02), "wav"),
        "speed -5%": (edits.speed(0.95), "wav"),
        "speed +5%": (edits.speed(1.05), "wav"),
        "tempo +5%": (edits.tempo(1.05), "wav"),
        "pitch +1 st": (edits.pitch(1.0), "wav"),
        "pitch -1 st": (edits.pitch(-1.0), "wav"),
        "phone band": (edits.phone, "wav"),
        "mixed -10 dB": (edits.mixed_with(bed.samples, WORK_RATE, -10), "wav"),
    }


def find_recordings(data: Path) -> list[Path]:
    """One file per recording: `X.hq.ogg` is preferred over `X.ogg`."""
    by_stem: dict[str, Path] = {}
    for path in sorted(data.rglob("*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file():
            continue
        stem = path.name[: -len(path.suffix)].removesuffix(".hq")
        if stem not in by_stem or ".hq." in path.name:
            by_stem[stem] = path
    return [by_stem[s] for s in sorted(by_stem)]


def recording_stem(path: Path) -> str:
    return path.name[: -len(path.suffix)].removesuffix(".hq")


def load_recording(path: Path) -> Recording:
    """The recording as mono samples at WORK_RATE, the source every clip is cut from."""
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        mono = soxr.resample(samples.mean(axis=1), rate, WORK_RATE)
    except soundfile.LibsndfileError:
        mono, _ = librosa.load(str(path), sr=WORK_RATE, mono=True)
    return Recording(recording_stem(path), path, np.asarray(mono, dtype=np.float32))


def filler_music(seconds: float, seed: int) -> np.ndarray:
    """Generated stand-in music at TARGET_RATE: random scales, tempos, timbres, drums."""
    rng = np.random.default_rng(seed)
    rate = TARGET_RATE
    out = np.zeros(int(seconds * rate))
    beat = 60.0 / rng.uniform(70, 160)
    root = rng.uniform(110, 330)
    scales = ([0, 2, 4, 5, 7, 9, 11], [0, 2, 3, 5, 7, 8, 10], [0, 3, 5, 7, 10])
    scale = np.array(scales[int(rng.integers(len(scales)))])
    partials = rng.uniform(0.1, 1.0, 6) / np.arange(1, 7)
    position = 0.0
    while position < seconds:
        length = beat * rng.choice([0.5, 1, 1, 2])
        for _ in range(int(rng.integers(1, 4))):  # a note or a chord
            degree = scale[rng.integers(len(scale))] + 12 * rng.integers(0, 3)
            hz = root * 2 ** (degree / 12)
            start, count = int(position * rate), int(min(length * 1.5, seconds - position) * rate)
            t = np.arange(count) / rate
            envelope = np.exp(-t * rng.uniform(1, 6))
            for k, amp in enumerate(partials, start=1):
                if hz * k < rate / 2:
                    out[start : start + count] += amp * envelope * np.sin(2 * np.pi * hz * k * t)
        if rng.random() < 0.5:  # percussion
            hit = int(0.05 * rate)
            start = int(position * rate)
            burst = rng.standard_normal(min(hit, len(out) - start)) * 0.3
            out[start : start + len(burst)] += burst * np.exp(-np.arange(len(burst)) / 80)
        position += length
    out += rng.standard_normal(len(out)) * 0.003
    return (out / (np.max(np.abs(out)) + 1e-9) * 0.8).astype(np.float32)


# ---------------------------------------------------------------- fpcalc


class FpcalcMissing(MediaError):
    """Chromaprint's fpcalc, the peer, is not installed."""


def find_fpcalc() -> str:
    """The fpcalc binary; a benchmark never installs system packages by itself."""
    found = shutil.which("fpcalc")
    if found is None:
        raise FpcalcMissing(
            "fpcalc (Chromaprint, the peer) is not installed: run `make bench-audio-deps` "
            "(Debian's libchromaprint-tools), or pass --no-fpcalc"
        )
    return found


def fpcalc_frames(fpcalc: str, path: Path) -> np.ndarray | None:
    """Raw Chromaprint frames; fpcalc exits 3 at end of file on Debian, which is fine."""
    done = subprocess.run(
        [fpcalc, "-raw", "-json", "-length", "0", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode not in (0, 3):
        return None
    try:
        frames = json.loads(done.stdout)["fingerprint"]
    except (ValueError, KeyError):
        return None
    return np.asarray(frames, dtype=np.uint32) if frames else None


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def best_ber(query: np.ndarray, reference: np.ndarray) -> float:
    """Lowest bit error rate of the query's frames slid along the reference's."""
    if len(query) > len(reference):
        query, reference = reference, query
    windows = np.lib.stride_tricks.sliding_window_view(reference, len(query))
    differing = _POPCOUNT[(windows ^ query).view(np.uint8)].reshape(len(windows), -1).sum(1)
    return float(differing.min()) / (32 * len(query))


# ---------------------------------------------------------------- runner


def _entry(fingerprint: AudioFingerprint) -> AudioEntry:
    marks = fingerprint.landmarks()
    return AudioEntry(marks.hashes, marks.times, fingerprint.frames, fingerprint.pitches)


def search(
    index: InvertedAudioIndex, fingerprint: AudioFingerprint, rules: AudioMatchRules
) -> tuple[list[int], AudioAlignment | None]:
    """(entry ids the query matches, best first; the strongest verified candidate, passing
    or not). The same steps as casework's matcher."""
    variants = query_variants(fingerprint.frames, fingerprint.pitches)
    votes = index.vote([QueryLandmarks(m.hashes, m.times) for _, m in variants])
    verified = verify_candidates(
        fingerprint.frames, fingerprint.pitches, votes, [v for v, _ in variants], index.peaks, rules
    )
    return [a.entry_id for a in verified if a.passes(rules)], (verified[0] if verified else None)


def run_audio_bench(
    config: BenchConfig,
    log: Callable[[str], None] = lambda _: None,
    advance: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, Any]:
    config.out.mkdir(parents=True, exist_ok=True)
    paths = find_recordings(config.data)
    if not paths:
        raise MediaError(f"no audio recordings under {config.data}")
    held = [p for p in paths if recording_stem(p) in config.held_out]
    indexed = [p for p in paths if recording_stem(p) not in config.held_out]
    if not held or not indexed:
        raise MediaError("need both indexed and held-out recordings (see --hold-out)")
    fpcalc = find_fpcalc() if config.use_fpcalc else None
    timings = Timings()
    index = InvertedAudioIndex()
    fp_refs: dict[int, np.ndarray] = {}
    reference_seconds = 0.0
    log(f"indexing {len(indexed)} recordings")
    for entry_id, path in enumerate(indexed):
        start = time.process_time()
        fingerprint = fingerprint_file(path)
        timings.fingerprint_cpu_s += time.process_time() - start
        timings.fingerprint_audio_s += fingerprint.duration
        reference_seconds += fingerprint.duration
        index.add(entry_id, _entry(fingerprint))
        if fpcalc and (frames := fpcalc_frames(fpcalc, path)) is not None:
            fp_refs[entry_id] = frames
    filler_seconds = 0.0
    with tempfile.TemporaryDirectory(dir=config.out) as scratch_name:
        scratch = Path(scratch_name)
        minutes = int(np.ceil(config.filler_minutes))
        log(f"generating {config.filler_minutes:g} min of filler music")
        for k in range(minutes):
            seconds = min(60.0, config.filler_minutes * 60 - k * 60)
            samples = filler_music(seconds, seed=1000 + k)
            start = time.process_time()
            fingerprint = fingerprint_samples(samples)
            timings.fingerprint_cpu_s += time.process_time() - start
            timings.fingerprint_audio_s += fingerprint.duration
            filler_seconds += fingerprint.duration
            index.add(10_000 + k, _entry(fingerprint))
            if fpcalc:
                wav = scratch / f"filler{k}.wav"
                wav.write_bytes(edits.wav_bytes(samples, TARGET_RATE))
                if (frames := fpcalc_frames(fpcalc, wav)) is not None:
                    fp_refs[10_000 + k] = frames
        recordings = {p: load_recording(p) for p in indexed + held}
        bed = recordings[held[-1]]
        suite = edit_suite(bed)
        if config.only_edits:
            suite = {k: v for k, v in suite.items() if k in config.only_edits}
        rules = config.rules
        query_log: list[dict[str, Any]] = []
        fp_log: list[tuple[str, int | None, int | None, float]] = []
        rng = np.random.default_rng(config.seed)
        plan = _plan(indexed, held, recordings, config, rng)
        total = len(plan) * len(suite)
        per_edit: dict[str, Tally] = defaultdict(Tally)
        distractor = Tally()
        matched_total = correct_total = 0
        fp_matched_total = fp_correct_total = 0
        done = 0
        for expected, clip in plan:
            for edit_name, (transform, file_format) in suite.items():
                edited, rate = transform(clip, WORK_RATE, rng)
                path = scratch / f"q.{file_format}"
                if file_format == "mp3":
                    path.write_bytes(edits.encode_mp3(edited, rate, 64_000))
                else:
                    path.write_bytes(edits.wav_bytes(edited, rate))
                start = time.process_time()
                best = None
                try:
                    found, best = search(index, fingerprint_file(path), rules)
                except MediaError:  # e.g. an edit that leaves too little to fingerprint
                    found = []
                timings.query_cpu_s += time.process_time() - start
                timings.query_audio_s += len(clip) / WORK_RATE
                tally = per_edit[edit_name] if expected is not None else distractor
                tally.queries += 1
                top = found[0] if found else None
                if top is not None:
                    matched_total += 1
                    if top == expected:
                        tally.correct += 1
                        correct_total += 1
                    else:
                        tally.wrong += 1
                query_log.append(
                    {
                        "edit": edit_name,
                        "seconds": len(clip) / WORK_RATE,
                        "expected": expected,
                        "matched": top,
                        "best": None if best is None else _brief(best),
                    }
                )
                if fpcalc:
                    fp_top, ber = _fpcalc_search(fpcalc, path, fp_refs)
                    fp_log.append((edit_name, expected, fp_top, ber))
                done += 1
                advance(done, total)
    # fpcalc's cut: the fixed one, or lower if needed so no distractor clip matches (its
    # best case on this very run, calibrated on the distractors it is then scored on).
    distractor_bers = [ber for _, expected, _, ber in fp_log if expected is None]
    fp_threshold = min([FPCALC_MAX_BER] + [b - 1e-6 for b in distractor_bers])
    for edit_name, expected, fp_top, ber in fp_log:
        tally = per_edit[edit_name] if expected is not None else distractor
        if fp_top is None:
            tally.fpcalc_failed += 1
        elif ber <= fp_threshold:
            fp_matched_total += 1
            if fp_top == expected:
                tally.fpcalc_correct += 1
                fp_correct_total += 1
            else:
                tally.fpcalc_wrong += 1
    hours = (reference_seconds + filler_seconds) / 3600
    return {
        "command_config": {
            "data": str(config.data),
            "held_out": list(config.held_out),
            "filler_minutes": config.filler_minutes,
            "clips_per_length": config.clips_per_length,
            "clip_seconds": list(CLIP_SECONDS),
            "seed": config.seed,
        },
        "indexed_recordings": [recording_stem(p) for p in indexed],
        "held_out_recordings": [recording_stem(p) for p in held],
        "mix_bed": bed.name,
        "per_edit": {name: tally.as_dict() for name, tally in per_edit.items()},
        "distractors": distractor.as_dict(),
        "precision": correct_total / matched_total if matched_total else None,
        "fpcalc_precision": (fp_correct_total / fp_matched_total if fp_matched_total else None),
        "fpcalc": fpcalc is not None,
        "fpcalc_max_ber": fp_threshold if fpcalc else None,
        "fingerprint_realtime_cpu": timings.fingerprint_audio_s / timings.fingerprint_cpu_s,
        "query_realtime_cpu": timings.query_audio_s / max(timings.query_cpu_s, 1e-9),
        "indexed_hours": hours,
        "index_bytes": index.nbytes,
        "index_bytes_per_hour": index.nbytes / hours,
        "postings": index.postings,
        "queries": query_log,
    }


def _brief(alignment: AudioAlignment) -> dict[str, Any]:
    return {
        "entry": alignment.entry_id,
        "votes": alignment.votes,
        "share": round(alignment.peak_share, 3),
        "z": round(alignment.evidence_z(AudioMatchRules().chance_share), 2),
        "matched_peaks": alignment.matched_peaks,
        "distinct_pitches": alignment.distinct_pitches,
        "seconds": round(alignment.matched_seconds, 2),
    }


def _plan(indexed, held, recordings, config, rng) -> list[tuple[int | None, np.ndarray]]:
    """(expected entry id or None for a distractor, clip samples) for every query clip."""
    plan: list[tuple[int | None, np.ndarray]] = []
    for seconds in CLIP_SECONDS:
        length = int(seconds * WORK_RATE)
        for entry_id, path in enumerate(indexed):
            plan += [(entry_id, clip) for clip in _clips(recordings[path], length, config, rng)]
        for path in held:
            plan += [(None, clip) for clip in _clips(recordings[path], length, config, rng)]
    return plan


def _clips(recording: Recording, length: int, config: BenchConfig, rng) -> list[np.ndarray]:
    if len(recording.samples) < length:
        return []
    starts = rng.integers(0, len(recording.samples) - length + 1, config.clips_per_length)
    return [recording.samples[s : s + length] for s in starts]


def _fpcalc_search(
    fpcalc: str, path: Path, refs: dict[int, np.ndarray]
) -> tuple[int | None, float]:
    """(closest reference, its bit error rate); (None, 1.0) if fpcalc failed."""
    frames = fpcalc_frames(fpcalc, path)
    if frames is None or not refs:
        return None, 1.0
    scores = {entry_id: best_ber(frames, ref) for entry_id, ref in refs.items()}
    best = min(scores, key=scores.__getitem__)
    return best, scores[best]


def report_markdown(result: dict[str, Any], command: str) -> str:
    lines = [
        "# ansim audio benchmark",
        "",
        f"Command: `{command}`",
        "",
        f"Indexed: {', '.join(result['indexed_recordings'])} + "
        f"{result['command_config']['filler_minutes']:g} min generated filler "
        f"({result['indexed_hours']:.2f} h in all). Held out as distractors: "
        f"{', '.join(result['held_out_recordings'])}; mix bed: {result['mix_bed']}.",
        "",
        "| edit | clips | ansim recall | fpcalc recall | ansim false | fpcalc false |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in result["per_edit"].items():
        fp = f"{row['fpcalc_recall']:.3f}" if result["fpcalc"] else "n/a"
        lines.append(
            f"| {name} | {row['queries']} | {row['recall']:.3f} | {fp} | "
            f"{row['false_matches']} | {row['fpcalc_false_matches']} |"
        )
    d = result["distractors"]
    lines += [
        "",
        f"Distractor clips (recordings not indexed): {d['queries']}; ansim matched "
        f"{d['false_matches']}, fpcalc matched {d['fpcalc_false_matches']}.",
        f"Precision: ansim {_fmt(result['precision'])}, fpcalc {_fmt(result['fpcalc_precision'])}"
        f" (fpcalc match cut: bit error rate <= {_fmt(result['fpcalc_max_ber'])}, lowered from "
        f"{FPCALC_MAX_BER} until no distractor matched).",
        f"Fingerprinting: {result['fingerprint_realtime_cpu']:.0f}x realtime per CPU core "
        "(decode included); query (fingerprint + search + verify): "
        f"{result['query_realtime_cpu']:.0f}x realtime.",
        f"Index: {result['index_bytes_per_hour'] / 2**20:.1f} MiB per hour of audio "
        f"({result['postings']:,} landmarks, {result['index_bytes'] / 2**20:.1f} MiB).",
    ]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
