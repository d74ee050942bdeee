"""Benchmark steps in a fresh interpreter: their memory and imports are their own (a
step's peak RSS is not the previous step's, and a library configured from the environment
at import, as Ray is, sees the environment the step was started with). And the memory and
CPU of the processes a step starts, sampled while it runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

import psutil


class StepDied(RuntimeError):
    pass


def in_child(
    function: Callable[..., Any],
    *args: Any,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Any:
    """`function(*args)` in a fresh interpreter (`initializer(*initargs)` run there first);
    a child killed on the way (out of memory) is `StepDied`."""
    with ProcessPoolExecutor(
        1, mp_context=get_context("spawn"), initializer=initializer, initargs=initargs
    ) as pool:
        try:
            return pool.submit(function, *args).result()
        except BrokenProcessPool as exc:
            raise StepDied(
                f"the benchmark step {function.__name__} died in its process (killed: out "
                "of memory? see `dmesg`); try a smaller size"
            ) from exc


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


class PeakMemory:
    """Samples the RSS of this process and its children (a crawl's hashing workers), and
    the CPU time of those children (the last sample of each; `exclude`: a site server).
    With `roots`, the "children" are those processes and theirs instead (a local Ray
    cluster's nodes and their workers)."""

    def __init__(self, exclude: set[int] | None = None, roots: list[int] | None = None) -> None:
        self.peak_main = 0
        self.peak_total = 0
        self.peak_children = 0
        self.exclude = exclude or set()
        self.roots = roots
        self._child_cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                main = me.memory_info().rss
                kids = [c for c in self._watched(me) if c.pid not in self.exclude]
                children = 0
                for child in kids:
                    children += child.memory_info().rss
                    self._child_cpu[child.pid] = cpu_seconds(child)
            except psutil.Error:
                continue
            self.peak_main = max(self.peak_main, main)
            self.peak_total = max(self.peak_total, main + children)
            self.peak_children = max(self.peak_children, children)
            self._stop.wait(0.2)

    def _watched(self, me: psutil.Process) -> list[psutil.Process]:
        if self.roots is None:
            return me.children(recursive=True)
        roots = [psutil.Process(pid) for pid in self.roots]
        return [p for root in roots for p in (root, *root.children(recursive=True))]

    @property
    def children_cpu_s(self) -> float:
        return sum(self._child_cpu.values())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
