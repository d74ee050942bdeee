"""The video match decision: frame hits that agree on one time offset, long enough.

A query video's sampled frames are looked up (PDQ, Hamming <= 31) among the reference
frames; each hit is a pair (query time, reference time). Pairs from one real copy share
an offset `reference_time - speed * query_time`; pairs from coincidences (a black frame,
a studio logo, one similar shot) scatter. Per reference, the pairs are sorted by offset
and the window of `offset_window_s` holding the most distinct query frames is the
alignment. It matches when the aligned duration reaches `min_duration_s` (a 10 s clip of
a 20 min reference) or a share of either video (short videos: vPDQ's percentages, but
counted on aligned frames only).

Low-quality frames (PDQ quality < 50) and near-uniform frames (black, one-colour, title
cards) never vote: unrelated videos share them.

`vpdq_percentages` is Meta's own rule (share of each side's frames that have any match),
kept for interoperability checks and the benchmark's peer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from ansim.detector.pdq import DEFAULT_MATCH_DISTANCE, DEFAULT_MIN_QUALITY
from ansim.detector.signals import FrameHash
from ansim.detector.video import VideoHashes

# Speed-ups and slow-downs tried when aligning (reposts are sped up to dodge matching).
DEFAULT_SPEEDS = (1.0, 1.1, 1 / 1.1, 1.25, 1 / 1.25)


@dataclass(frozen=True)
class VideoMatchRules:
    max_distance: int = DEFAULT_MATCH_DISTANCE  # a frame matching on its own (a thumbnail)
    # Frames this close vote in a video alignment. Looser than a lone frame's bar: a logo,
    # a crop or a rescale moves PDQ by 30-50 bits, and the vote still asks for seconds of
    # frames agreeing on one time offset, which unrelated videos (>= 80 bits apart per
    # frame in the benchmark) never give. At least `min_close_frames` must be within
    # `max_distance`.
    vote_distance: int = 56
    min_close_frames: int = 1
    min_quality: int = DEFAULT_MIN_QUALITY
    min_duration_s: float = 5.0
    min_share: float = 0.8  # of the query's or the reference's usable duration
    min_share_frames: int = 2  # the share rule alone needs this many aligned query frames
    offset_window_s: float = 2.0
    max_gap_s: float = 2.0  # aligned frames this close (or two sampling steps) form one stretch
    speeds: tuple[float, ...] = DEFAULT_SPEEDS


@dataclass(frozen=True)
class VideoSide:
    """What the decision needs to know about one video besides its hits."""

    step_s: float  # sampling interval (seconds between hashed frames)
    usable_s: float  # duration covered by its usable frames

    @classmethod
    def of(
        cls,
        frames: Sequence[FrameHash],
        usable: Sequence[bool] | None = None,
        min_quality: int = DEFAULT_MIN_QUALITY,
    ) -> VideoSide:
        flags = usable if usable is not None else [True] * len(frames)
        times = [f.timestamp for f in frames]
        step = sampling_step(times)
        ok = [good and f.quality >= min_quality for f, good in zip(frames, flags, strict=True)]
        return cls(step, usable_duration(times, ok, step))


def usable_duration(times: Sequence[float], usable: Sequence[bool], step: float) -> float:
    """Seconds of video that usable frames stand for: each until the next hashed frame.

    Sampling need not be regular (deduplicated references keep a frame per half second of
    still picture and every frame of a fast pan); a frame stands for at most
    `max(step, 1 s)`, the last one for one step.
    """
    cap = max(step, 1.0)
    total = 0.0
    for index, (stamp, ok) in enumerate(zip(times, usable, strict=True)):
        if ok:
            span = times[index + 1] - stamp if index + 1 < len(times) else step
            total += min(max(span, 0.0), cap)
    return total


@dataclass(frozen=True)
class FramePair:
    query_time: float
    reference_time: float
    distance: int


@dataclass(frozen=True)
class Alignment:
    reference: Hashable
    speed: float
    offset_s: float  # reference_time - speed * query_time
    query_start: float
    query_end: float
    reference_start: float
    reference_end: float
    duration_s: float  # aligned, matched duration (the shorter of the two coverages)
    query_share: float
    reference_share: float
    frames: int  # distinct query frames in the alignment
    mean_distance: float
    mirrored: bool
    matched: bool

    def explanation(self) -> str:
        flip = ", mirrored" if self.mirrored else ""
        speed = f", speed x{self.speed:.2f}" if abs(self.speed - 1.0) > 1e-9 else ""
        return (
            f"query {format_time(self.query_start)}-{format_time(self.query_end)} = "
            f"reference {format_time(self.reference_start)}-{format_time(self.reference_end)} "
            f"({self.duration_s:.0f} s aligned over {self.frames} frames, "
            f"{self.query_share:.0%} of the query, {self.reference_share:.0%} of the reference, "
            f"mean distance {self.mean_distance:.1f} bits{speed}{flip})"
        )


def format_time(seconds: float) -> str:
    """`m:ss` or `h:mm:ss`, as analysts read times off a player."""
    whole = max(0, int(seconds + 0.5))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def sampling_step(timestamps: Sequence[float], default: float = 1.0) -> float:
    """The typical gap between hashed frames (median), `default` for a single frame."""
    gaps = np.diff(np.asarray(sorted(timestamps), dtype=np.float64))
    gaps = gaps[gaps > 1e-6]
    return float(np.median(gaps)) if gaps.size else default


def _coverage(times: Iterable[float], step: float, max_gap: float) -> float:
    """Length of the aligned stretches: runs of `times` with gaps up to `max_gap`, each
    counted from its first frame to one step past its last.

    A copy under motion, re-encoding or a phase shift matches only some sampled frames;
    the stretch between two aligned hits a second or two apart is still the same footage.
    """
    total = 0.0
    run_start = run_end = None
    for stamp in sorted(set(times)):
        if run_end is not None and stamp - run_end <= max_gap:
            run_end = stamp
            continue
        if run_start is not None:
            total += run_end - run_start + step
        run_start = run_end = stamp
    if run_start is not None:
        total += run_end - run_start + step
    return total


def _best_window(offsets: np.ndarray, query_times: np.ndarray, width: float) -> np.ndarray:
    """Indices (into the offset-sorted arrays) of the window with most distinct query times."""
    best = (0, 0, 0)  # (distinct, start, stop)
    counts: Counter[float] = Counter()
    start = 0
    for stop in range(len(offsets)):
        counts[query_times[stop]] += 1
        while offsets[stop] - offsets[start] > width:
            counts[query_times[start]] -= 1
            if not counts[query_times[start]]:
                del counts[query_times[start]]
            start += 1
        if len(counts) > best[0]:
            best = (len(counts), start, stop + 1)
    return np.arange(best[1], best[2])


def align(
    reference: Hashable,
    pairs: Sequence[FramePair],
    query: VideoSide,
    reference_side: VideoSide,
    rules: VideoMatchRules = VideoMatchRules(),
    mirrored: bool = False,
) -> Alignment | None:
    """Best time alignment of one reference's frame pairs, with the match decision."""
    if not pairs:
        return None
    query_times = np.array([p.query_time for p in pairs])
    reference_times = np.array([p.reference_time for p in pairs])
    distances = np.array([p.distance for p in pairs])
    best: tuple[tuple[int, bool, float], float, np.ndarray] | None = None
    for speed in rules.speeds:
        offsets = reference_times - speed * query_times
        order = np.argsort(offsets, kind="stable")
        chosen = order[_best_window(offsets[order], query_times[order], rules.offset_window_s)]
        # Most distinct query frames first; among equals, normal speed, then the speed
        # whose offsets agree best.
        spread = float(np.std(offsets[chosen]))
        score = (len(set(query_times[chosen].tolist())), speed == 1.0, -round(spread, 3))
        if best is None or score > best[0]:
            best = (score, speed, chosen)
    assert best is not None
    _, speed, chosen = best
    q_times, r_times = query_times[chosen], reference_times[chosen]
    # A pair vouches for one sampling step of the coarser side on both sides, so a query
    # sampled once a second aligns with a reference hashed at every frame.
    step = max(query.step_s, reference_side.step_s)
    query_cov = _coverage(q_times.tolist(), step, max(rules.max_gap_s, 2 * step))
    # The reference side is measured by its extent: frame times there jitter by up to a
    # step around the offset, so a union of steps would undercount a true copy. A still
    # (one reference frame hit again and again) still spans a single step.
    reference_cov = float(r_times.max() - r_times.min()) + step
    duration = min(query_cov, reference_cov)
    query_share = min(1.0, query_cov / query.usable_s) if query.usable_s else 0.0
    reference_share = (
        min(1.0, reference_cov / reference_side.usable_s) if reference_side.usable_s else 0.0
    )
    frames = len(set(q_times.tolist()))
    close = len(set(q_times[distances[chosen] <= rules.max_distance].tolist()))
    matched = close >= rules.min_close_frames and (
        duration + 1e-6 >= rules.min_duration_s
        or (
            frames >= rules.min_share_frames
            and max(query_share, reference_share) >= rules.min_share
        )
    )
    return Alignment(
        reference=reference,
        speed=speed,
        offset_s=float(np.median(r_times - speed * q_times)),
        query_start=float(q_times.min()),
        query_end=float(q_times.max() + query.step_s),
        reference_start=float(r_times.min()),
        reference_end=float(r_times.max() + reference_side.step_s),
        duration_s=duration,
        query_share=query_share,
        reference_share=reference_share,
        frames=frames,
        mean_distance=float(distances[chosen].mean()),
        mirrored=mirrored,
        matched=matched,
    )


@dataclass(frozen=True)
class FrameHit:
    """An index answer for one query frame: a reference frame within the distance."""

    reference: Hashable
    reference_time: float
    distance: int


def align_hits(
    query_frames: Sequence[FrameHash],
    query_usable: Sequence[bool],
    hits: Sequence[Sequence[FrameHit]],
    query: VideoSide,
    references: Mapping[Hashable, VideoSide],
    rules: VideoMatchRules = VideoMatchRules(),
    mirrored: bool = False,
) -> list[Alignment]:
    """Alignments for every reference hit by a query, from per-frame index results.

    `hits[i]` are the index answers for `query_frames[i]` (reference frames already
    limited to usable ones by whoever filled the index). Unusable query frames do not vote.
    """
    by_reference: dict[Hashable, list[FramePair]] = {}
    for frame, ok, frame_hits in zip(query_frames, query_usable, hits, strict=True):
        if not ok or frame.quality < rules.min_quality:
            continue
        for hit in frame_hits:
            if hit.distance <= rules.vote_distance:
                by_reference.setdefault(hit.reference, []).append(
                    FramePair(frame.timestamp, hit.reference_time, hit.distance)
                )
    alignments = []
    for reference, pairs in by_reference.items():
        side = references.get(reference)
        if side is None:
            continue
        found = align(reference, pairs, query, side, rules, mirrored)
        if found is not None:
            alignments.append(found)
    return sorted(alignments, key=lambda a: (-a.matched, -a.duration_s, a.mean_distance))


def best_per_reference(alignments: Iterable[Alignment]) -> list[Alignment]:
    """Keep one alignment per reference (e.g. of the straight and the mirrored query)."""
    best: dict[Hashable, Alignment] = {}
    for found in alignments:
        held = best.get(found.reference)
        key = (found.matched, found.duration_s, -found.mean_distance)
        if held is None or key > (held.matched, held.duration_s, -held.mean_distance):
            best[found.reference] = found
    return sorted(best.values(), key=lambda a: (-a.matched, -a.duration_s, a.mean_distance))


# ---- brute force over two hash lists (tests, benchmarks, small banks) ----------------------


def _codes(hexes: Sequence[str]) -> np.ndarray:
    if not hexes:
        return np.zeros((0, 32), dtype=np.uint8)
    raw = b"".join(bytes.fromhex(h) for h in hexes)
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(hexes), 32)


_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
_CHUNK_CELLS = 1 << 20  # pairs per block: bounds memory to ~32 MiB whatever the sizes


def distance_matrix(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Hamming distances between every hash of `a` (rows) and of `b` (columns)."""
    codes_a, codes_b = _codes(a), _codes(b)
    out = np.zeros((len(codes_a), len(codes_b)), dtype=np.int32)
    if not len(codes_a) or not len(codes_b):
        return out
    rows = max(1, _CHUNK_CELLS // len(codes_b))
    for start in range(0, len(codes_a), rows):
        xor = codes_a[start : start + rows, None, :] ^ codes_b[None, :, :]
        out[start : start + rows] = _POPCOUNT[xor].sum(axis=2, dtype=np.int32)
    return out


@dataclass(frozen=True)
class VideoFrames:
    """A video's hashes as the matcher sees them (from `VideoHashes` or a vPDQ file)."""

    frames: list[FrameHash]
    usable: list[bool]
    mirrored: list[str]
    # Extra hashes of each frame (centred crops of a reference), matched as that frame.
    variants: list[list[str]] = field(default_factory=list)

    @classmethod
    def of(cls, hashes: VideoHashes) -> VideoFrames:
        """A hashed video: near-uniform frames unusable, with mirror and crop hashes."""
        return cls(hashes.frames, [not u for u in hashes.uniform], hashes.mirrored, hashes.cropped)

    @classmethod
    def plain(cls, frames: Sequence[FrameHash]) -> VideoFrames:
        """Frames with no uniformity or mirror information (e.g. read from a vPDQ file)."""
        return cls(list(frames), [True] * len(frames), [""] * len(frames))


def compare_videos(
    query: VideoFrames,
    reference: VideoFrames,
    rules: VideoMatchRules = VideoMatchRules(),
    reference_key: Hashable = "reference",
) -> Alignment | None:
    """Align a query against one reference by brute force, straight and mirrored."""
    keep_r = [
        i
        for i, (f, ok) in enumerate(zip(reference.frames, reference.usable, strict=True))
        if ok and f.quality >= rules.min_quality
    ]
    reference_side = VideoSide.of(reference.frames, reference.usable, min_quality=rules.min_quality)
    query_side = VideoSide.of(query.frames, query.usable, min_quality=rules.min_quality)
    # Columns: each usable reference frame, then its variants (same frame, same time).
    columns = keep_r + [i for i in keep_r if reference.variants for _ in reference.variants[i]]
    r_hashes = [reference.frames[i].pdq for i in keep_r] + [
        pdq for i in keep_r if reference.variants for pdq in reference.variants[i]
    ]
    results = []
    for mirrored in (False, True):
        hexes = query.mirrored if mirrored else [f.pdq for f in query.frames]
        rows = [i for i, h in enumerate(hexes) if h]
        if not rows:
            continue
        distances = distance_matrix([hexes[i] for i in rows], r_hashes)
        hits: list[list[FrameHit]] = [[] for _ in query.frames]
        for row, col in zip(*np.nonzero(distances <= rules.vote_distance), strict=True):
            r_frame = reference.frames[columns[col]]
            hits[rows[row]].append(
                FrameHit(reference_key, r_frame.timestamp, int(distances[row, col]))
            )
        results += align_hits(
            query.frames,
            query.usable,
            hits,
            query_side,
            {reference_key: reference_side},
            rules,
            mirrored,
        )
    found = best_per_reference(results)
    return found[0] if found else None


def vpdq_percentages(
    query: Sequence[FrameHash],
    target: Sequence[FrameHash],
    max_distance: int = DEFAULT_MATCH_DISTANCE,
    min_quality: int = DEFAULT_MIN_QUALITY,
) -> tuple[float, float]:
    """Meta's vPDQ rule: % of each side's good frames with any match on the other side.

    vPDQ calls two videos a match when both percentages reach a threshold (80 by default
    in its tools). No time alignment: order and offset are ignored.
    """
    q = [f.pdq for f in query if f.quality >= min_quality]
    t = [f.pdq for f in target if f.quality >= min_quality]
    if not q or not t:
        return 0.0, 0.0
    close = distance_matrix(q, t) <= max_distance
    return 100.0 * close.any(axis=1).mean(), 100.0 * close.any(axis=0).mean()
