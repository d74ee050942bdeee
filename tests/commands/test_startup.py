"""Start-up stays light: `import ansim.cli` and `ansim --help` load no detector, index or
store dependency (their time is measured by `ansim bench startup`, not here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "faiss", "cv2", "aiohttp", "alembic", "scipy", "sqlalchemy", "numpy")
ANSIM = str(Path(sys.executable).parent / "ansim")


def modules_loaded_by(code: str) -> set[str]:
    """Top-level packages in sys.modules after running `code` in a fresh interpreter."""
    probe = (
        "import sys\n"
        "try:\n" + "".join(f"    {line}\n" for line in code.splitlines()) + "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return set(done.stderr.split())


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
