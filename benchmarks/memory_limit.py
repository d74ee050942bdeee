"""Running a benchmark step inside a memory limit (a Linux memory cgroup).

A process's resident size says what it touched, not what it needs: mapped file pages
are counted while the kernel could drop them. A cgroup's limit is what a smaller machine
would impose: the step's heap and every file page it faults in are charged to it, and
past the limit the kernel reclaims file pages (or kills the step). `--history-memory-limit`
and `--audio-memory-limit` of `ansim bench scale` use it to show that the crawl history
and the audio bank work inside a budget below their files' size.

Needs a writable cgroup hierarchy (v2's unified one, or v1's memory controller), which a
root shell in a container or on a host usually has; otherwise the step is refused with
the reason.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ansim.benchmarks.processes import in_child

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class MemoryCgroup:
    path: Path
    version: int

    @classmethod
    def create(cls, limit_bytes: int) -> MemoryCgroup:
        v2 = (CGROUP_ROOT / "cgroup.controllers").exists()
        parent = CGROUP_ROOT if v2 else CGROUP_ROOT / "memory"
        path = parent / f"ansim-bench-{uuid.uuid4().hex[:8]}"
        try:
            path.mkdir()
            limit_file = "memory.max" if v2 else "memory.limit_in_bytes"
            (path / limit_file).write_text(str(limit_bytes))
        except OSError as exc:
            raise ValueError(f"cannot create a memory cgroup under {parent}: {exc}") from exc
        return cls(path, 2 if v2 else 1)

    def peak_bytes(self) -> int | None:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((self.path / name).read_text())
        except (OSError, ValueError):
            return None

    def limit_hits(self) -> int | None:
        """How often usage reached the limit (v1) or reclaim was forced by it (v2)."""
        try:
            if self.version == 1:
                return int((self.path / "memory.failcnt").read_text())
            for line in (self.path / "memory.events").read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == "max":
                    return int(value)
        except (OSError, ValueError):
            return None
        return None

    def remove(self) -> None:
        # Still busy: left for the kernel to free when its last process is gone.
        with contextlib.suppress(OSError):
            self.path.rmdir()


def _join(procs: str) -> None:
    with open(procs, "w") as out:
        out.write(str(os.getpid()))


def forget_cached_pages(path: Path) -> None:
    """Drop the page cache's copy of a file written earlier, so the step reads it itself
    (pages cached by another process would be charged to that process's cgroup)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(descriptor)  # dirty pages are not dropped, only queued for writing
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def run_limited(limit_bytes: int, function: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """`function(*args)` (returning a dict) in a fresh process inside a memory cgroup of
    `limit_bytes`; the cgroup's peak usage and limit hits are added to its result. A step
    the kernel kills at the limit is `StepDied`."""
    group = MemoryCgroup.create(limit_bytes)
    try:
        result = in_child(
            function, *args, initializer=_join, initargs=(str(group.path / "cgroup.procs"),)
        )
        return {
            **result,
            "memory_limit_mb": round(limit_bytes / 2**20),
            "cgroup_peak_mb": round((group.peak_bytes() or 0) / 2**20),
            "cgroup_limit_hits": group.limit_hits(),
        }
    finally:
        group.remove()
