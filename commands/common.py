"""What every command group shares: consoles, --json, refusals as exit code 2, progress bars."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from ansim.casework.errors import CaseworkError
from ansim.casework.workspace import NotInitialized
from ansim.detector.hashing import HashOptions
from ansim.detector.image import ImageOptions
from ansim.store.crypto import KeyProblem
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

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


def refusals(func: F) -> F:
    """Turn refused requests into a one-line message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (CaseworkError, NotInitialized, KeyProblem) as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from exc

    return wrapper  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=0,
        help="Hashing processes (default: one per core). Each file is hashed under its "
        "budget in a worker that is replaced if it dies; 0 hashes in this process.",
    ),
]


def worker_count(workers: int | None) -> int:
    from ansim.pipeline.workers import default_workers

    return default_workers() if workers is None else workers


def budgets() -> Any:
    """The per-item budgets, with `$ANSIM_HOME/settings.toml` applied (refused if malformed)."""
    from ansim.pipeline.workers import load_budgets
    from ansim.store.home import resolve_home

    try:
        return load_budgets(resolve_home().root)
    except ValueError as exc:
        raise CaseworkError(str(exc)) from exc


class ItemsPerSecondColumn(ProgressColumn):
    """Items finished per second (rich's own speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "", style="progress.data.speed")


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        ItemsPerSecondColumn(),
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


def shared_data_root() -> Path:
    """`../shared/data` beside the checkout, or $ANSIM_SHARED_DATA."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return Path(os.environ.get("ANSIM_SHARED_DATA") or default)


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
