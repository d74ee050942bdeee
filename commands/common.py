"""What every command group shares: consoles, --json, refusals as exit code 2, progress bars."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import NotInitialized
from ansim.detector.hashing import HashOptions
from ansim.detector.image import ImageOptions
from ansim.settings import Settings, SettingsError
from ansim.store.crypto import KeyProblem
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

out = Console()

err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

AllowLoopback = Annotated[
    bool,
    typer.Option(
        "--allow-loopback",
        help="Allow 127.0.0.0/8 and ::1 (tests, local use; or set ANSIM_ALLOW_LOOPBACK=1); "
        "private ranges stay refused.",
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


def refusals(func: F) -> F:
    """Turn refused requests into a one-line message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (CaseworkError, NotInitialized, KeyProblem, SettingsError) as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from exc

    return wrapper  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def progress_bar() -> Progress:
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
    return HashOptions(image=ImageOptions(fast_decode=not full_decode))


def shared_data_root(settings: Settings | None = None) -> Path:
    """The settings' shared data folder (ANSIM_SHARED_DATA; default: the environment's),
    else `../shared/data` beside the checkout."""
    settings = settings or Settings.from_environment()
    return settings.shared_data or Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data_dir() -> Path:
    """The shared data folder, refused when it is missing (benchmarks build from it)."""
    path = shared_data_root()
    if not path.is_dir():
        raise CaseworkError(f"shared data not found at {path} (set ANSIM_SHARED_DATA)")
    return path


ImageVerification = Annotated[
    str,
    typer.Option(
        help="Local-feature verification of crawled images: all (as `ansim scan`; features "
        "kept, so a later retro-hunt verifies crops), triage (only images with a candidate "
        "that PDQ or the descriptor leave open now), off (PDQ and descriptor decide)."
    ),
]
