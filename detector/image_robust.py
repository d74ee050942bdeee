"""The image signals beyond PDQ: the learned descriptor and ORB local features.

Each is computed only where its optional dependency is installed (torch + weights for
the descriptor, OpenCV for local features); without them an image yields PDQ alone and
matching falls back to PDQ, as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detector.descriptor import SIGNAL_KIND as DESCRIPTOR_KIND
from detector.descriptor import load_descriptor_model
from detector.local_verify import SIGNAL_KIND as LOCAL_FEATURES_KIND
from detector.local_verify import extract_local_features, opencv_available

# HashOptions.extra key: False skips these signals (PDQ-only hashing, e.g. hash lists).
ROBUST_OPTION = "image_robust"


def robust_image_signals(rgb: np.ndarray) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    model = load_descriptor_model()
    if model is not None:
        extra[DESCRIPTOR_KIND] = model.describe(rgb)
    if opencv_available():
        extra[LOCAL_FEATURES_KIND] = extract_local_features(rgb)
    return extra
