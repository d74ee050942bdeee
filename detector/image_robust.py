"""The image signals beyond PDQ: the learned descriptor and ORB local features.

The descriptor is computed only where its weights file is installed; without it an image
yields PDQ and local features, and matching falls back to PDQ near misses verified by
local features.

ORB features are the dearest signal, most of the CPU of hashing an image (see
benchmarks/RESULTS.md, "crawl").
A bulk caller such as the crawler may hash without them (`LOCAL_FEATURES_OPTION` False)
and add them with `local_features_file` only for an image that has a candidate to verify.
"""

from __future__ import annotations

from pathlib import Path

from ansim.detector.descriptor import weights_path
from ansim.detector.image import ImageOptions, load_rgb
from ansim.detector.local_verify import LocalFeatures, extract_local_features

# HashOptions.extra key: False skips these signals (PDQ-only hashing, e.g. hash lists).
ROBUST_OPTION = "image_robust"
# HashOptions.extra key: False skips the ORB features alone (see the module doc).
LOCAL_FEATURES_OPTION = "image_local_features"
# HashOptions.extra key: False leaves out the half-size ORB keypoints, for queries that are
# never stored (`local_verify.extract_local_features`).
COARSE_LOCAL_FEATURES_OPTION = "image_local_features_coarse"


def descriptor_available() -> bool:
    """Whether images get a descriptor here, without loading the model."""
    return weights_path().is_file()


def local_features_file(
    path: Path, options: ImageOptions = ImageOptions(), coarse: bool = True
) -> LocalFeatures:
    """The ORB features `hash_file` would have computed for this image file."""
    return extract_local_features(load_rgb(path, options), coarse)
