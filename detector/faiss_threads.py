"""FAISS searches small enough for one thread run on one thread.

FAISS parallelises every search with OpenMP. For a search of a few million comparisons
starting and joining threads costs more than it saves, and on a busy machine (a crawl's
hashing workers on every core) the threads' spin-waits cost many times the CPU of the
search itself (see benchmarks/RESULTS.md, "crawl").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import faiss


@contextmanager
def one_faiss_thread() -> Iterator[None]:
    """FAISS on one OpenMP thread inside the block (a process sharing the cores with others)."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


@contextmanager
def faiss_threads_for(comparisons: int, single_thread_below: int) -> Iterator[None]:
    """One OpenMP thread while fewer than `single_thread_below` comparisons are due."""
    if comparisons >= single_thread_below:
        yield
        return
    with one_faiss_thread():
        yield
