"""One file of named numpy arrays that opens in milliseconds: memory-mapped, not read.

A bank of a million texts or ten thousand hours of audio holds gigabytes of sorted
arrays; reading them (or unzipping an .npz) on every open costs seconds per gigabyte,
while the searches touch a few pages of each. The layout: a 16-byte magic naming the
format, the JSON header's length (8 bytes, little-endian), the header (the index's own
fields under "meta", and each array's dtype, shape and offset), then the arrays'
bytes, each starting on a 64-byte boundary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

MAGIC_BYTES = 16
ALIGN = 64


def _padding(position: int) -> int:
    return -position % ALIGN


def write_arrays(
    path: Path, magic: bytes, meta: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    if len(magic) != MAGIC_BYTES:
        raise ValueError(f"the magic must be {MAGIC_BYTES} bytes")
    contiguous = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    layout: dict[str, dict[str, Any]] = {}
    # The header's length depends on the offsets it lists: offsets are relative to the
    # first array, which starts on the boundary after the header.
    offset = 0
    for name, array in contiguous.items():
        offset += _padding(offset)
        layout[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
        offset += array.nbytes
    header = json.dumps({"meta": meta, "arrays": layout}).encode()
    start = MAGIC_BYTES + 8 + len(header)
    start += _padding(start)
    # Written beside and moved over: the arrays may be memory maps of the very file being
    # replaced (an index saved where it was opened), which truncating would pull away.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as out:
        out.write(magic)
        out.write(np.uint64(len(header)).tobytes())
        out.write(header)
        out.write(b"\0" * (start - out.tell()))
        for name, array in contiguous.items():
            out.write(b"\0" * (start + layout[name]["offset"] - out.tell()))
            array.tofile(out)
    os.replace(temporary, path)


def has_magic(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as source:
        return source.read(MAGIC_BYTES) == magic


def read_arrays(path: Path, magic: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, read-only memory-mapped arrays) of a file `write_arrays` wrote."""
    with open(path, "rb") as source:
        if source.read(MAGIC_BYTES) != magic:
            raise ValueError(f"{path} is not a {magic.decode(errors='replace').strip()} file")
        length = int(np.frombuffer(source.read(8), dtype="<u8")[0])
        header = json.loads(source.read(length))
    start = MAGIC_BYTES + 8 + length
    start += _padding(start)
    size = path.stat().st_size
    arrays: dict[str, np.ndarray] = {}
    for name, spec in header["arrays"].items():
        dtype, shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
        nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        if start + spec["offset"] + nbytes > size:
            raise ValueError(f"{path} is truncated")
        if nbytes == 0:  # mmap cannot map nothing
            arrays[name] = np.zeros(shape, dtype=dtype)
        else:
            arrays[name] = np.memmap(
                path, dtype=dtype, mode="r", offset=start + spec["offset"], shape=shape
            )
    return header["meta"], arrays
