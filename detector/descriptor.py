"""Learned copy-detection descriptor at inference: RGB pixels in, a unit vector out.

The network runs in numpy (`models.descriptor_numpy`) from the weights file, read without
torch (`models.torch_file`): torch is needed only to train it (`pip install 'ansim[ml]'`).
Without the weights file, `load_descriptor_model()` returns None and image matching runs
on PDQ and local-feature verification alone.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from ansim.models.descriptor_numpy import NumpyDescriptor
from ansim.models.torch_file import read_torch_file
from ansim.settings import Settings, SettingsError, variable
from threadpoolctl import ThreadpoolController

SIGNAL_KIND = "descriptor"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "models" / "weights" / "descriptor.pt"
# The bank's float index is made for this width (models.descriptor.DescriptorConfig.dim).
DESCRIPTOR_DIM = 128


def weights_path(settings: Settings | None = None) -> Path:
    """The weights file: the settings' (ANSIM_DESCRIPTOR_WEIGHTS), else the bundled one.

    Hashing workers call this without settings, in their own processes: they read the
    environment they inherited, through `Settings`."""
    settings = settings or Settings.from_environment()
    return settings.descriptor_weights or DEFAULT_WEIGHTS


@dataclass(frozen=True)
class Descriptor:
    """One image's descriptor and the model that made it (vectors of two models never mix)."""

    vector: np.ndarray  # float32, unit length
    model_id: str
    # Stored as int8 (a byte per dimension): the crawl history keeps millions of these.
    quantised: bool = False

    def to_blob(self) -> bytes:
        if self.quantised:
            return quantise(self.vector).tobytes()
        return self.vector.astype(np.float32).tobytes()

    @classmethod
    def from_blob(cls, blob: bytes, model_id: str) -> Descriptor:
        return cls(vector_from_blob(blob), model_id)

    def summary(self) -> dict[str, object]:
        return {"model": self.model_id, "dim": int(self.vector.shape[0])}


def quantise(vector: np.ndarray) -> np.ndarray:
    """int8 codes of a unit vector, scaled so its largest component is +-127. The scale is
    not kept: similarity is a cosine, so the decoded vector is normalised again."""
    peak = float(np.abs(vector).max()) or 1.0
    return np.round(vector * (127.0 / peak)).astype(np.int8)


def vector_from_blob(blob: bytes, dim: int = DESCRIPTOR_DIM) -> np.ndarray:
    """A stored descriptor as a float32 unit vector: `dim` int8 codes (the crawl history)
    or float32 values (references; another width comes back as stored, for the caller to
    refuse)."""
    if len(blob) != dim:
        return np.frombuffer(blob, dtype=np.float32).copy()
    vector = np.frombuffer(blob, dtype=np.int8).astype(np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


class DescriptorModel:
    """A loaded network; `describe` is thread-compatible and runs on the CPU, on `threads`
    BLAS threads (one: hashing runs a worker per core, and more threads on these small
    matrix products cost far more in hand-offs than they gain)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        try:
            self.network = NumpyDescriptor(read_torch_file(path))
        except (
            OSError,
            zipfile.BadZipFile,
            pickle.UnpicklingError,
            LookupError,
            ValueError,
        ) as exc:
            raise SettingsError(
                f"the descriptor weights {path} cannot be used ({type(exc).__name__}: {exc}); "
                f"set {variable('descriptor_weights')} to a trained weights file, or unset it "
                "for the bundled one"
            ) from exc
        self.dim = self.network.config.dim
        # The id names the exact weights: descriptors from other weights are not comparable.
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        self.model_id = f"sscd-narrow-{self.dim}d-{digest}"
        self.threads = threads
        self._blas = ThreadpoolController()

    def describe(self, rgb: np.ndarray) -> Descriptor:
        return Descriptor(self.describe_batch([rgb])[0], self.model_id)

    def describe_batch(self, images: list[np.ndarray]) -> np.ndarray:
        """(n, dim) float32 unit vectors for RGB uint8 images."""
        with self._blas.limit(limits=self.threads, user_api="blas"):
            return self.network.describe(images)


@lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> DescriptorModel:
    return DescriptorModel(Path(path))


def load_descriptor_model(path: Path | None = None) -> DescriptorModel | None:
    """The descriptor network, or None where the weights file is missing. SettingsError
    where it is there but unusable: a command stops on that before its first item
    (`file_hashing.hash_paths`, the crawl's plan) rather than failing every image."""
    path = path or weights_path()
    if not path.is_file():
        return None
    return _load(str(path), path.stat().st_mtime_ns)
