"""What every command group shares: consoles, --json, refusals as exit code 2, progress bars."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from ansim.casework.errors import CaseworkError
from ansim.i18n import _
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from ansim.detector.hashing import HashOptions
    from rich.progress import Progress

out = Console()

err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

AllowLoopback = Annotated[
    bool,
    typer.Option(
        "--allow-loopback",
        help="Allow 127.0.0.0/8 and ::1 (tests, local use); private ranges stay refused.",
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


# Exceptions that mean "request refused" (exit 2), by module: a command imports only what it
# uses, and an exception of a module never imported cannot have been raised.
REFUSALS = (
    ("ansim.casework.errors", "CaseworkError"),
    ("ansim.casework.workspace", "NotInitialized"),
    ("ansim.store.crypto", "KeyProblem"),
)


def is_refusal(exc: BaseException) -> bool:
    kinds = tuple(
        getattr(sys.modules[module], name) for module, name in REFUSALS if module in sys.modules
    )
    return isinstance(exc, kinds)


def refusals(func: F) -> F:
    """Turn refused requests into a one-line message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if not is_refusal(exc):
                raise
            print_error(str(exc))
            raise typer.Exit(2) from exc

    return wrapper  # type: ignore[return-value]


def print_error(message: str) -> None:
    """`error: ...` on stderr (in red on a terminal)."""
    err.print(Text(_("error") + ": ", style="red") + Text(message), highlight=False)


def print_failed(path: object, error: str, console: Console | None = None) -> None:
    """`failed PATH: why` for one item of many."""
    line = Text(_("failed") + " ", style="red") + Text(f"{path}: {error}")
    (console or out).print(line, highlight=False)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def progress_bar() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def count_files(paths: list[Path]) -> int:
    from ansim.casework.files import expand_paths

    return sum(1 for _ in expand_paths(paths))


def format_vpdq_texts(videos: list[tuple[str, str]]) -> str:
    """Exported vPDQ texts: a single video plain, several under `# ref-ID` lines."""
    if len(videos) == 1:
        return videos[0][1]
    return "".join(f"# {label}\n{text}" for label, text in videos)


def hash_options(full_decode: bool) -> HashOptions:
    from ansim.detector.hashing import HashOptions
    from ansim.detector.image import ImageOptions

    return HashOptions(image=ImageOptions(fast_decode=not full_decode))


def shared_data_root() -> Path:
    """`../shared/data` beside the checkout, or $ANSIM_SHARED_DATA."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(os.environ.get("ANSIM_SHARED_DATA") or default)


def shared_data_dir() -> Path:
    """The shared data folder, refused when it is missing (benchmarks build from it)."""
    path = shared_data_root()
    if not path.is_dir():
        raise CaseworkError(
            _("shared data not found at {path} (set ANSIM_SHARED_DATA)").format(path=path)
        )
    return path


ImageVerification = Annotated[
    str,
    typer.Option(
        help="Local-feature verification of crawled images: all (as `ansim scan`; features "
        "kept, so a later retro-hunt verifies crops), triage (only images with a candidate "
        "that PDQ or the descriptor leave open now), off (PDQ and descriptor decide)."
    ),
]
