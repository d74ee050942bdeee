"""Image hasher: decode safely, hash the stored pixels with PDQ.

`ImageOptions.fast_decode` trades bit-exactness with Meta's reference for speed: JPEGs
decode reduced, and PDQ is computed by the separable-filter form of the algorithm
(`pdq_fast`), which agrees with the reference up to float rounding. Without it the
pixels and the hash are the reference's, bit for bit (`pdqhash`).

EXIF orientation is ignored on purpose: Meta's reference hashers hash the stored pixel
grid, and hash lists exchanged with other systems must agree with them. Rotated copies
still match because queries try all 8 dihedral variants (`indexer.pdq_bank`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ansim.detector.errors import MediaError
from ansim.detector.pdq import hash_pixels_dihedral
from ansim.detector.signals import FrameHash
from PIL import Image, UnidentifiedImageError

# PDQ downsamples to 64x64 through a 512-ish intermediate; decoding more than about
# twice that side buys no accuracy, only time.
FAST_DECODE_SIDE = 512
DEFAULT_MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class ImageOptions:
    fast_decode: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS


def load_rgb(path: Path, options: ImageOptions = ImageOptions()) -> np.ndarray:
    """Decode an image to RGB uint8 pixels, refusing bombs and broken files with MediaError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > options.max_pixels:
                    raise MediaError(
                        f"image is {width}x{height} = {width * height:,} pixels, over the "
                        f"limit of {options.max_pixels:,} (possible decompression bomb)"
                    )
                if getattr(image, "n_frames", 1) > 1:
                    image.seek(0)
                if options.fast_decode and image.format == "JPEG":
                    # libjpeg scales by 1/2, 1/4 or 1/8 while decoding, never below the request.
                    image.draft("RGB", (FAST_DECODE_SIDE, FAST_DECODE_SIDE))
                rgb = _to_rgb(image)
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(f"image refused as a possible decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise MediaError("not a readable image (corrupt or unsupported format)") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(f"image is corrupt or truncated: {exc}") from exc
    if options.fast_decode:
        rgb = _reduce(rgb)
    return rgb


def _to_rgb(image: Image.Image) -> np.ndarray:
    # Plain PIL conversion for every mode (16-bit grey included), as python-threatexchange
    # does: its hashes are the ones shared hash lists were made with.
    image.load()
    return np.asarray(image.convert("RGB"))


def _reduce(rgb: np.ndarray) -> np.ndarray:
    """Box-shrink by a whole factor so the short side stays >= FAST_DECODE_SIDE."""
    factor = min(rgb.shape[0], rgb.shape[1]) // FAST_DECODE_SIDE
    if factor < 2:
        return rgb
    return np.asarray(Image.fromarray(rgb).reduce(factor))


@dataclass(frozen=True)
class ImageHashes:
    """The PDQ hash of the stored pixels and its 8 dihedral variants (original first)."""

    pdq: FrameHash
    dihedral: list[str]


def hash_image(path: Path, options: ImageOptions = ImageOptions()) -> ImageHashes:
    return hash_rgb(load_rgb(path, options), exact=not options.fast_decode)


def hash_rgb(rgb: np.ndarray, exact: bool = True) -> ImageHashes:
    """`exact`: Meta's reference (pdqhash), else its separable-filter form, an order of
    magnitude less CPU on a photo (benchmarks/RESULTS.md, "scan")."""
    # Either way the 8 variants cost little more than one hash: the filtering is shared.
    if exact:
        hashes, quality = hash_pixels_dihedral(rgb)
    else:
        from ansim.detector.pdq_fast import hash_dihedral  # scipy: not for every import

        hashes, quality = hash_dihedral(rgb)
    return ImageHashes(pdq=FrameHash(pdq=hashes[0], quality=quality), dihedral=hashes)
