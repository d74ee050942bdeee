"""The registry imports its signal types on first read; its declarations say what the
types say, and listing the indexed names imports none of them."""

from __future__ import annotations

import subprocess
import sys

import pytest
from ansim import signal_types
from ansim.signal_types.registry import Declared, Registry


def test_declarations_match_the_loaded_types() -> None:
    loaded = list(signal_types.REGISTRY)  # loading checks every declaration
    assert [t.name for t in loaded] == signal_types.REGISTRY.names()
    assert signal_types.indexed_type_names() == [t.name for t in signal_types.indexed_types()]
    assert "pdq" in signal_types.indexed_type_names()
    assert "sha256" not in signal_types.indexed_type_names()


def test_a_wrong_declaration_is_refused_when_loaded() -> None:
    registry = Registry([Declared("pdq", "ansim.signal_types.pdq", "PdqType", indexed=False)])
    assert registry.names(indexed_only=True) == []  # declarations are read without loading
    with pytest.raises(RuntimeError, match="declared 'pdq'"):
        list(registry)


def test_appended_types_are_listed_and_kept() -> None:
    registry = Registry([Declared("md5", "ansim.signal_types.digests", "MD5", indexed=False)])
    extra = signal_types.by_name("sha256")
    registry.append(extra)
    assert registry.names() == ["md5", "sha256"] and registry[1] is extra and len(registry) == 2


def test_listing_indexed_names_imports_no_signal_type() -> None:
    probe = (
        "import sys\n"
        "from ansim.signal_types import indexed_type_names\n"
        "assert indexed_type_names()\n"
        "print(' '.join(m for m in ('numpy', 'faiss', 'cv2', 'scipy', 'ansim.signal_types.pdq')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == ""
