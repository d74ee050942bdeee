"""Checks the reduced-decoding fast path against full decoding, image by image.

The rule (PDQ's own, for implementations that do not hash the reference pixels): for
every image of quality >= 80, the fast path's hash lies within 10 bits of the hash of the
fully decoded pixels. This module measures it on any list of images and times both paths.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ansim.detector import image as detector_image
from ansim.detector.errors import MediaError
from ansim.detector.image import ImageOptions, load_rgb
from ansim.detector.pdq import hash_pixels, pdq_distance

RULE_MIN_QUALITY = 80
RULE_MAX_DISTANCE = 10


@dataclass(frozen=True)
class FastDecodeSample:
    path: str
    full_quality: int
    fast_quality: int
    distance: int
    full_pixels: int
    fast_pixels: int
    full_s: float
    fast_s: float

    @property
    def reduced(self) -> bool:
        return self.fast_pixels < self.full_pixels


@dataclass
class FastDecodeReport:
    samples: list[FastDecodeSample] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ruled(self) -> list[FastDecodeSample]:
        """The samples the rule speaks about: full-decode quality >= 80."""
        return [s for s in self.samples if s.full_quality >= RULE_MIN_QUALITY]

    @property
    def violations(self) -> list[FastDecodeSample]:
        return [s for s in self.ruled if s.distance > RULE_MAX_DISTANCE]

    def summary(self) -> dict[str, Any]:
        ruled = self.ruled
        full_s = sum(s.full_s for s in self.samples)
        fast_s = sum(s.fast_s for s in self.samples)
        return {
            "rule": f"fast hash within {RULE_MAX_DISTANCE} bits of full-decode hash "
            f"when quality >= {RULE_MIN_QUALITY}",
            "images": len(self.samples),
            "errors": len(self.errors),
            "quality_ge_80": len(ruled),
            "reduced": sum(s.reduced for s in self.samples),
            "max_distance": max((s.distance for s in ruled), default=None),
            "violations": [asdict(s) for s in self.violations],
            "passes": not self.violations,
            "decode_hash_images_per_s": len(self.samples) / fast_s if fast_s else None,
            "decode_hash_images_per_s_full_decode": len(self.samples) / full_s if full_s else None,
        }


def _timed_hash(path: Path, fast: bool) -> tuple[str, int, int, float]:
    start = time.perf_counter()
    rgb = load_rgb(path, ImageOptions(fast_decode=fast))
    pdq, quality = hash_pixels(rgb)
    return pdq, quality, rgb.shape[0] * rgb.shape[1], time.perf_counter() - start


def check_fast_decode(
    paths: Iterable[Path], on_progress: Callable[[], None] = lambda: None
) -> FastDecodeReport:
    """Hash every image both ways; undecodable files are listed under errors."""
    report = FastDecodeReport()
    for path in paths:
        try:
            full_pdq, full_q, full_px, full_s = _timed_hash(path, fast=False)
            fast_pdq, fast_q, fast_px, fast_s = _timed_hash(path, fast=True)
        except MediaError as exc:
            report.errors[str(path)] = str(exc)
        else:
            report.samples.append(
                FastDecodeSample(
                    str(path),
                    full_q,
                    fast_q,
                    pdq_distance(full_pdq, fast_pdq),
                    full_px,
                    fast_px,
                    full_s,
                    fast_s,
                )
            )
        on_progress()
    return report


def main(argv: list[str] | None = None) -> int:
    """`python -m ansim.benchmarks.fast_decode FOLDER... [--side N]`: the rule on every image.

    --side overrides detector_image.FAST_DECODE_SIDE for this process only, to test other
    values of it on the same images.
    """
    import argparse
    import json

    from ansim.benchmarks.images import find_images

    parser = argparse.ArgumentParser(prog="python -m ansim.benchmarks.fast_decode")
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--side", type=int, help="try this FAST_DECODE_SIDE instead")
    args = parser.parse_args(argv)
    if args.side:
        detector_image.FAST_DECODE_SIDE = args.side
    paths = [p for folder in args.folders for p in find_images(folder)]
    summary = check_fast_decode(paths).summary()
    summary["fast_decode_side"] = detector_image.FAST_DECODE_SIDE
    summary["violations"] = [(v["path"], v["distance"]) for v in summary["violations"]]
    print(json.dumps(summary, indent=2))
    return 0 if summary["passes"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
