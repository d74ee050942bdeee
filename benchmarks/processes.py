"""Benchmark steps in a fresh interpreter: their memory and imports are their own (a
step's peak RSS is not the previous step's, and a library configured from the environment
at import, as Ray is, sees the environment the step was started with)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any


def in_child(function: Callable[..., Any], *args: Any) -> Any:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()
