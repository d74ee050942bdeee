"""Reading a `torch.save` file without torch: its pickle, with every tensor a numpy array.

A `torch.save` file is a zip of one folder: `data.pkl`, the pickled object, names each
tensor's storage by a key, and the storage's bytes are the member `data/<key>`.

The weights file may be user-supplied (ANSIM_DESCRIPTOR_WEIGHTS), and unpickling calls
whatever the pickle names. The unpickler here builds plain values, OrderedDicts and arrays
only, and refuses any other class or function the pickle asks for.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# torch's typed storages as a pickle names them (`torch.FloatStorage`), by element type.
# bfloat16 has no numpy type: a file holding it is refused.
STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


# The pickle names tensors, it does not hold them: anything larger is not a weights file.
MAX_PICKLE_BYTES = 16 << 20


class RefusedTorchFile(pickle.UnpicklingError):
    """The file is not a `torch.save` of tensors and plain values, or asks for more."""


@dataclass(frozen=True)
class StorageType:
    """What the pickle's `torch.<X>Storage` stands for here: the element type."""

    dtype: np.dtype


def _rebuild_tensor(
    storage: np.ndarray,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *_autograd_and_metadata: object,
) -> np.ndarray:
    """torch._utils._rebuild_tensor_v2: the tensor's view of its storage, as an array of
    its own. The view is checked against the storage first: as_strided reads whatever
    memory a hostile offset or stride points at."""
    numbers = (offset, *size, *stride)
    if (
        not isinstance(storage, np.ndarray)
        or len(size) != len(stride)
        or not all(isinstance(n, int) and n >= 0 for n in numbers)
    ):
        raise RefusedTorchFile(f"a tensor of size {size}, stride {stride}, offset {offset}")
    if 0 in size:
        return np.empty(size, dtype=storage.dtype)
    last = offset + sum((length - 1) * step for length, step in zip(size, stride, strict=True))
    if last >= storage.size:
        raise RefusedTorchFile(
            f"a tensor of size {size}, stride {stride}, offset {offset} reads past its "
            f"storage of {storage.size} elements"
        )
    view = np.lib.stride_tricks.as_strided(
        storage[offset:],
        shape=size,
        strides=tuple(step * storage.itemsize for step in stride),
        writeable=False,
    )
    return view.copy()


class _TensorUnpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, root: str, byteorder: str) -> None:
        pickled = archive.getinfo(f"{root}/data.pkl")
        if pickled.file_size > MAX_PICKLE_BYTES:
            raise RefusedTorchFile(
                f"its data.pkl unpacks to {pickled.file_size:,} bytes (a weights file's is "
                f"kilobytes; at most {MAX_PICKLE_BYTES:,} are read)"
            )
        super().__init__(io.BytesIO(archive.read(pickled)))
        self.archive = archive
        self.root = root
        self.byteorder = ">" if byteorder == "big" else "<"
        self.storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(np.dtype(STORAGE_DTYPES[name]))
        raise RefusedTorchFile(
            f"the file's pickle asks for {module}.{name}: a weights file holds only tensors "
            "and plain values, so it is refused"
        )

    def persistent_load(self, pid: Any) -> np.ndarray:
        """A storage, ('storage', type, key, location, elements), read once per key."""
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise RefusedTorchFile(f"the file's pickle refers to {pid!r}, not a storage")
        _, storage_type, key, _location, elements = pid
        if not isinstance(storage_type, StorageType) or not isinstance(key, str):
            raise RefusedTorchFile(f"the file's pickle refers to {pid!r}, not a storage")
        if key not in self.storages:
            dtype = storage_type.dtype.newbyteorder(self.byteorder)
            try:
                member = self.archive.getinfo(f"{self.root}/data/{key}")
            except KeyError as exc:
                raise RefusedTorchFile(f"storage {key} is missing from the file") from exc
            # Checked before reading: a compressed member may unpack to any size.
            if not isinstance(elements, int) or member.file_size != elements * dtype.itemsize:
                raise RefusedTorchFile(
                    f"storage {key} holds {member.file_size} bytes, not {elements} {dtype} elements"
                )
            data = self.archive.read(member)
            native = dtype.newbyteorder("=")
            self.storages[key] = np.frombuffer(data, dtype=dtype).astype(native, copy=False)
        return self.storages[key]


def read_torch_file(path: Path) -> Any:
    """What `torch.load(path, weights_only=True)` returns, with numpy arrays for tensors.

    Raises RefusedTorchFile for anything but a zip-format `torch.save` of tensors (of the
    types in STORAGE_DTYPES), OrderedDicts and plain values."""
    if not zipfile.is_zipfile(path):
        raise RefusedTorchFile(f"{path} is not a torch.save zip file")
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise RefusedTorchFile(f"{path} has {len(pickles)} data.pkl members, not one")
        root = pickles[0].removesuffix("/data.pkl")
        names = set(archive.namelist())
        byteorder = "little"
        if f"{root}/byteorder" in names:
            byteorder = archive.read(f"{root}/byteorder").decode("ascii").strip()
        try:
            return _TensorUnpickler(archive, root, byteorder).load()
        except RefusedTorchFile as exc:
            raise RefusedTorchFile(f"{path}: {exc}") from None
