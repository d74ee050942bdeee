"""Start-up stays light: `import ansim.cli` and `ansim --help` load no detector, index or
store dependency, commands that open the home but match nothing load no detector, index
or migration tool, and those that only list not even SQLAlchemy (their time is measured
by `ansim bench startup`, not here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "faiss", "cv2", "aiohttp", "alembic", "scipy", "sqlalchemy", "numpy", "pydantic")
# What opening the home must not load: the store (sqlalchemy) it needs, the rest it must not.
HEAVY_FOR_THE_HOME = ("torch", "faiss", "cv2", "numba", "alembic", "scipy", "numpy", "PIL")
ANSIM = str(Path(sys.executable).parent / "ansim")


def run_probe(code: str) -> tuple[str, set[str]]:
    """Runs `code` in a fresh interpreter: (its stdout, the top-level packages in sys.modules
    after it)."""
    probe = (
        "import sys\n"
        "try:\n" + "".join(f"    {line}\n" for line in code.splitlines()) + "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout, set(done.stderr.split())


def modules_loaded_by(code: str) -> set[str]:
    """Top-level packages in sys.modules after running `code` in a fresh interpreter."""
    return run_probe(code)[1]


def test_importing_the_cli_loads_no_heavy_dependency() -> None:
    loaded = modules_loaded_by("import ansim.cli")
    assert "typer" in loaded  # the probe sees what was imported
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_help_of_the_root_and_a_group_loads_no_heavy_dependency() -> None:
    for argv in (["ansim", "--help"], ["ansim", "case", "--help"], ["ansim", "scan", "--help"]):
        loaded = modules_loaded_by(f"sys.argv = {argv!r}\nfrom ansim.cli import main\nmain()")
        assert not loaded & set(HEAVY), (argv, loaded & set(HEAVY))


def test_version_and_every_group_in_the_help() -> None:
    from importlib.metadata import version

    from ansim.cli import GROUPS
    from ansim.i18n import _

    done = subprocess.run([ANSIM, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"ansim {version('ansim')}"
    shown = subprocess.run(
        [ANSIM, "--help"], capture_output=True, text=True, timeout=60, env={"COLUMNS": "100"}
    ).stdout
    for name, group in GROUPS.items():
        assert f"{name} " in shown and _(group.load().info.help) == group.help, name


def test_copied_constants_match_their_sources() -> None:
    """The command modules copy this one to avoid importing the detectors, and take the
    case vocabulary from its light module rather than from the tables."""
    from ansim.commands import cases, references
    from ansim.detector.video import REFERENCE_SECONDS_PER_HASH
    from ansim.store.vocabulary import CASE_TYPES, SERVICE_KINDS

    assert cases.CASE_TYPES == CASE_TYPES and cases.SERVICE_KINDS == SERVICE_KINDS
    assert references.REFERENCE_SECONDS_PER_HASH == REFERENCE_SECONDS_PER_HASH


def test_commands_that_open_the_home_load_no_detector_index_or_alembic(
    ansim_home: Path, tmp_path: Path
) -> None:
    """Listing commands open a SQLite home through sqlite3 (`store.plain_sqlite`): no
    SQLAlchemy either. Other commands load the store, and nothing heavier."""
    from ansim.pipeline.workspaces import init_workspace

    from tests.casework_fixtures import open_case_with_reference

    workspace, _ = init_workspace()
    case_id, reference_id, _ = open_case_with_reference(workspace, tmp_path / "media", seed=3)
    workspace.close()
    commands = {
        "case list --json": f'"case_id": "{case_id}"',
        f"case show {case_id}": case_id,
        "queue list": "",
        "ref list --json": f'"id": {reference_id}',
        "host list": "",
        "audit verify": "intact",
    }
    for command, expected in commands.items():
        argv = ["ansim", *command.split()]
        shown, loaded = run_probe(f"sys.argv = {argv!r}\nfrom ansim.cli import main\nmain()")
        assert expected in shown, (command, shown)
        assert not loaded & set(HEAVY_FOR_THE_HOME), (command, loaded & set(HEAVY_FOR_THE_HOME))
        lists = not command.startswith("case show")
        assert ("sqlalchemy" in loaded) is not lists, (command, "sqlalchemy" in loaded)
        # typer's pydantic adapters are built only for options given a value (cli.py).
        assert ("pydantic" in loaded) is not lists, command
    shown, loaded = run_probe(
        "sys.argv = ['ansim', 'queue', 'list', '--status', 'new', '--json']\n"
        "from ansim.cli import main\nmain()"
    )
    assert shown.strip() == "[]" and "pydantic" in loaded  # the value was coerced by typer
