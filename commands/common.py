"""What every command group shares: consoles, --json, refusals as exit code 2, progress bars."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from ansim.casework.errors import CaseworkError
from ansim.i18n import _
from ansim.settings import Settings
from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.text import Text

if TYPE_CHECKING:
    from ansim.detector.hashing import HashOptions
    from rich.progress import Progress


class SafeConsole(Console):
    """A console that never crashes on text from outside: a URL or file name that is not
    valid Rich markup (`[/x]`) prints literally instead of raising MarkupError. Values from
    outside still go through `shown()` so that valid-looking markup (`[blink]`) does not
    restyle the output either."""

    def render_str(self, text: str, **kwargs: Any) -> Text:  # type: ignore[override]
        try:
            return super().render_str(text, **kwargs)
        except MarkupError:
            return super().render_str(escape(text), **kwargs)


def shown(value: object) -> str:
    """A value that came from outside (URL, file name, host reply), escaped for Rich."""
    return escape(str(value))


out = SafeConsole()

err = SafeConsole(stderr=True)

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


def read_private_text(source: Path | None, ask: bool, prompt: str) -> str | None:
    """Victim data an analyst types in (contact details, notes), never from argv, where
    every user of the machine and the shell history can read it: from a file, stdin
    (`-`), or a hidden prompt. None when none of them was asked for."""
    if source is not None and ask:
        raise typer.BadParameter("give a file (or - for stdin) or ask for a prompt, not both")
    if source is not None:
        if str(source) == "-":
            text = sys.stdin.read()
        else:
            try:
                text = source.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise typer.BadParameter(f"cannot read {source}: {exc}") from exc
        return text.rstrip("\r\n") or None
    if ask:
        return typer.prompt(prompt, hide_input=True, default="", show_default=False) or None
    return None


def private_text_options(name: str, what: str) -> tuple[Any, Any]:
    """(--NAME-file, --ask-NAME) option types for `read_private_text`."""
    file_option = Annotated[
        Path | None,
        typer.Option(
            f"--{name}-file",
            help=f"Read {what} from this file (- for stdin); never give it on the command line.",
        ),
    ]
    ask_option = Annotated[
        bool, typer.Option(f"--ask-{name}", help=f"Type {what} at a hidden prompt.")
    ]
    return file_option, ask_option


ContactFile, AskContact = private_text_options("contact", "the victim's contact details")
NoteFile, AskNote = private_text_options("note", "the note")
ReasonFile, AskReason = private_text_options("reason", "the reason")
# Exceptions that mean "request refused" (exit 2), by module: a command imports only what it
# uses, and an exception of a module never imported cannot have been raised.
REFUSALS = (
    ("ansim.casework.errors", "CaseworkError"),
    ("ansim.casework.workspace", "NotInitialized"),
    ("ansim.store.crypto", "KeyProblem"),
    ("ansim.settings", "SettingsError"),
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


Engine = Annotated[str, typer.Option(help="local (worker processes here) or ray (a Ray cluster).")]


def checked_engine(engine: str) -> str:
    """An `--engine` value, refused unless it names an engine."""
    if engine not in ("local", "ray"):
        raise CaseworkError("--engine must be local or ray")
    return engine


RayAddress = Annotated[
    str | None,
    typer.Option(help="--engine ray: the cluster's HOST:PORT (default: start a local Ray)."),
]
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
        return load_budgets(resolve_home(Settings.from_environment()).root)
    except ValueError as exc:
        raise CaseworkError(str(exc)) from exc


def progress_bar() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
    )

    class ItemsPerSecondColumn(ProgressColumn):
        """Items finished per second (rich's own speed column counts bytes)."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.1f}/s" if speed else "", style="progress.data.speed")

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
    from ansim.detector.hashing import HashOptions
    from ansim.detector.image import ImageOptions

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
        raise CaseworkError(
            _("shared data not found at {path} (set ANSIM_SHARED_DATA)").format(path=path)
        )
    return path


ImageVerification = Annotated[
    str,
    typer.Option(
        help="Local-feature verification of crawled images against the references: all (as "
        "`ansim scan`), triage (only images with a candidate that PDQ or the descriptor "
        "leave open now; misses about half of the screenshots and most pastes that `all` "
        "finds), off (PDQ and descriptor decide). The history never keeps them."
    ),
]
