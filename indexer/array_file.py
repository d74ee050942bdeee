"""One file of named numpy arrays that opens in milliseconds: memory-mapped, not read.

A bank of a million texts or ten thousand hours of audio holds gigabytes of sorted
arrays; reading them (or unzipping an .npz) on every open costs seconds per gigabyte,
while the searches touch a few pages of each. The layout: a 16-byte magic naming the
format, the JSON header's length (8 bytes, little-endian), the header (the index's own
fields under "meta", and each array's dtype, shape and offset), then the arrays'
bytes, each starting on a 64-byte boundary.

An array too large to hold in memory is given as `Chunked` (its dtype and shape, and a
function yielding its rows in order): it is written a piece at a time.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAGIC_BYTES = 16
ALIGN = 64


def _padding(position: int) -> int:
    return -position % ALIGN


@dataclass(frozen=True)
class Chunked:
    """An array written from pieces: `chunks()` yields arrays of `dtype` whose rows,
    one after another, make the array of `shape`."""

    dtype: np.dtype
    shape: tuple[int, ...]
    chunks: Callable[[], Iterator[np.ndarray]]

    @property
    def nbytes(self) -> int:
        return np.dtype(self.dtype).itemsize * int(np.prod(self.shape, dtype=np.int64))


def _write_chunks(out: Any, name: str, array: Chunked) -> None:
    written = 0
    for chunk in array.chunks():
        chunk = np.ascontiguousarray(chunk, dtype=array.dtype)
        if chunk.shape[1:] != tuple(array.shape[1:]):
            raise ValueError(f"array {name}: a piece of shape {chunk.shape}")
        chunk.tofile(out)
        written += chunk.nbytes
    if written != array.nbytes:
        raise ValueError(f"array {name}: {written} bytes written, {array.nbytes} declared")


def write_arrays(
    path: Path,
    magic: bytes,
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray | Chunked],
) -> None:
    if len(magic) != MAGIC_BYTES:
        raise ValueError(f"the magic must be {MAGIC_BYTES} bytes")
    contiguous = {
        name: array if isinstance(array, Chunked) else np.ascontiguousarray(array)
        for name, array in arrays.items()
    }
    layout: dict[str, dict[str, Any]] = {}
    # The header's length depends on the offsets it lists: offsets are relative to the
    # first array, which starts on the boundary after the header.
    offset = 0
    for name, array in contiguous.items():
        offset += _padding(offset)
        dtype = np.dtype(array.dtype).str
        layout[name] = {"dtype": dtype, "shape": list(array.shape), "offset": offset}
        offset += array.nbytes
    header = json.dumps({"meta": meta, "arrays": layout}).encode()
    start = MAGIC_BYTES + 8 + len(header)
    start += _padding(start)
    # Written beside and moved over: the arrays may be memory maps of the very file being
    # replaced (an index saved where it was opened), which truncating would pull away.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as out:
            out.write(magic)
            out.write(np.uint64(len(header)).tobytes())
            out.write(header)
            out.write(b"\0" * (start - out.tell()))
            for name, array in contiguous.items():
                out.write(b"\0" * (start + layout[name]["offset"] - out.tell()))
                if isinstance(array, Chunked):
                    _write_chunks(out, name, array)
                else:
                    array.tofile(out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)


def has_magic(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as source:
        return source.read(MAGIC_BYTES) == magic


def read_arrays(
    path: Path, magic: bytes, random_access: frozenset[str] = frozenset()
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, read-only memory-mapped arrays) of a file `write_arrays` wrote.

    Arrays named in `random_access` are read a page at a time: a fault on a mapped file
    otherwise reads the pages around it too (as much as the device's read-ahead, often
    megabytes), which for an array read at scattered places fills memory with pages no
    search wants and, where memory is short, evicts those it does."""
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
            if name in random_access:
                arrays[name]._mmap.madvise(mmap.MADV_RANDOM)  # type: ignore[attr-defined]
    return header["meta"], arrays
