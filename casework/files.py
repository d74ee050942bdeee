"""Expanding the paths an analyst names into the files to process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def expand_paths(paths: list[Path]) -> Iterator[Path]:
    """Files as named, folders recursively in sorted order; missing paths are yielded too,
    so the caller reports them as per-item errors instead of silently skipping them."""
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    yield Path(root) / name
        else:
            yield path
