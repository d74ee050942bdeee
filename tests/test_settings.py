"""Settings: every ANSIM_* variable read once, in settings.py and nowhere else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from ansim.settings import Settings, SettingsError
from ansim.store.home import resolve_home

from tests.conftest import REPO_ROOT

# Product code: every package folder and top-level module of the repository (tests and
# samples are not product code; benchmarks are, they ship in the wheel).
NOT_PRODUCT = {"tests", "samples", "scripts", ".venv", "build", ".git"}


def test_every_variable_lands_in_its_field(tmp_path: Path) -> None:
    settings = Settings.from_environment(
        {
            "ANSIM_HOME": str(tmp_path / "home"),
            "ANSIM_DB_URL": "postgresql+psycopg://db/ansim",
            "ANSIM_KEY_FILE": str(tmp_path / "key"),
            "ANSIM_ANALYST": "kim",
            "ANSIM_SMTP_URL": "smtp://127.0.0.1:25",
            "ANSIM_NOTICE_FROM": "takedown@center.example",
            "ANSIM_NOTICE_ORG": "Center",
            "ANSIM_NOTICE_PHONE": "+82 2 000",
            "ANSIM_ALLOW_LOOPBACK": "1",
            "ANSIM_DESCRIPTOR_WEIGHTS": str(tmp_path / "w.pt"),
            "ANSIM_SHARED_DATA": str(tmp_path / "data"),
        }
    )
    assert settings == Settings(
        home=tmp_path / "home",
        db_url="postgresql+psycopg://db/ansim",
        key_file=tmp_path / "key",
        analyst="kim",
        smtp_url="smtp://127.0.0.1:25",
        notice_from="takedown@center.example",
        notice_org="Center",
        notice_phone="+82 2 000",
        allow_loopback=True,
        descriptor_weights=tmp_path / "w.pt",
        shared_data=tmp_path / "data",
    )
    home = resolve_home(settings)
    assert (home.root, home.db_url, home.key_file) == (
        tmp_path / "home",
        "postgresql+psycopg://db/ansim",
        tmp_path / "key",
    )


def test_unset_and_empty_variables_give_the_defaults() -> None:
    settings = Settings.from_environment({"ANSIM_SMTP_URL": "", "PATH": "/bin"})
    assert settings == Settings()
    assert settings.smtp_url is None and settings.allow_loopback is False
    home = resolve_home(settings)
    assert home.root == Path.home() / ".ansim"
    assert home.db_url == f"sqlite:///{home.root / 'ansim.db'}"
    assert home.key_file == home.root / "secret.key"


def test_settings_cannot_change_once_read() -> None:
    with pytest.raises(AttributeError):
        Settings().allow_loopback = True  # type: ignore[misc]


def test_a_bad_flag_and_the_old_loopback_name_are_refused() -> None:
    with pytest.raises(SettingsError, match="ANSIM_ALLOW_LOOPBACK must be 1 or 0"):
        Settings.from_environment({"ANSIM_ALLOW_LOOPBACK": "sometimes"})
    assert not Settings.from_environment({"ANSIM_ALLOW_LOOPBACK": "0"}).allow_loopback
    with pytest.raises(SettingsError, match="now called ANSIM_ALLOW_LOOPBACK"):
        Settings.from_environment({"ANSIM_FETCH_ALLOW_LOOPBACK": "1"})


def test_the_workspace_carries_the_settings_it_was_opened_with(
    ansim_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ansim.pipeline.workspaces import init_workspace

    monkeypatch.setenv("ANSIM_ANALYST", "lee")
    workspace, _ = init_workspace()
    try:
        assert workspace.home.root == ansim_home
        assert workspace.settings.analyst == workspace.actor == "lee"
    finally:
        workspace.close()


def _product_sources() -> list[Path]:
    return [
        path
        for path in REPO_ROOT.rglob("*.py")
        if not NOT_PRODUCT & set(path.relative_to(REPO_ROOT).parts)
    ]


def _environment_names(path: Path) -> list[str]:
    """ANSIM_* variable names in a module: string constants that are exactly a name (what
    an environment read needs, directly or through a constant)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("ANSIM_")
        and node.value.replace("_", "").isalnum()
        and node.value.isupper()
    ]


def test_no_module_but_settings_reads_an_ansim_variable() -> None:
    sources = _product_sources()
    assert REPO_ROOT / "settings.py" in sources
    assert {"ANSIM_HOME", "ANSIM_ALLOW_LOOPBACK"} <= set(
        _environment_names(REPO_ROOT / "settings.py")
    )
    offenders = {
        str(path.relative_to(REPO_ROOT)): names
        for path in sources
        if path != REPO_ROOT / "settings.py" and (names := _environment_names(path))
    }
    assert offenders == {}


def test_the_source_check_sees_a_read_through_a_constant(tmp_path: Path) -> None:
    module = tmp_path / "reads.py"
    module.write_text('import os\nSMTP_ENV = "ANSIM_SMTP_URL"\nos.environ.get(SMTP_ENV)\n')
    assert _environment_names(module) == ["ANSIM_SMTP_URL"]
    module.write_text('MESSAGE = "set ANSIM_SMTP_URL=smtp://HOST:PORT"\n')
    assert _environment_names(module) == []
