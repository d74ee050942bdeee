"""Secrets stay off the command line and out of tracebacks; hostile input from outside
neither breaks notices nor restyles or crashes the CLI; small review defects stay fixed."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ansim import cli
from ansim.casework import cases, hosts
from ansim.casework.errors import CaseworkError
from ansim.casework.smtp import SmtpSettings
from ansim.commands.common import SafeConsole
from ansim.pipeline.workspaces import init_workspace
from ansim.store.tables import Case, utcnow
from rich.table import Table

from tests.helpers import photo_like

ANSIM = str(Path(sys.executable).parent / "ansim")


def run(home: Path, *args: str, expect: int = 0, stdin: str | None = None) -> Any:
    env = {**os.environ, "ANSIM_HOME": str(home), "ANSIM_ANALYST": "kim"}
    env.pop("ANSIM_DB_URL", None)
    done = subprocess.run(
        [ANSIM, *args], env=env, capture_output=True, text=True, timeout=120, input=stdin
    )
    assert done.returncode == expect, f"ansim {' '.join(args)} -> {done.returncode}\n{done.stderr}"
    return json.loads(done.stdout) if "--json" in args and expect == 0 else done


# --- secrets off the command line ----------------------------------------------------------


def test_contact_and_notes_come_from_stdin_or_a_file_never_argv(
    ansim_home: Path, tmp_path: Path
) -> None:
    run(ansim_home, "init")
    refused = run(ansim_home, "case", "open", "--type", "other", "--contact", "010-1", expect=2)
    assert "No such option" in refused.stderr
    case_id = run(
        ansim_home, "case", "open", "--type", "other", "--contact-file", "-", "--json",
        stdin="010-5555-6666\n",
    )["case_id"]  # fmt: skip
    note = tmp_path / "note.txt"
    note.write_text("met at the shelter\n")
    run(ansim_home, "case", "service", case_id, "--kind", "housing", "--note-file", str(note))
    shown = run(ansim_home, "case", "show", case_id, "--reveal", "--json")
    assert shown["contact"] == "010-5555-6666"
    assert shown["services"][0]["note"] == "met at the shelter"
    run(ansim_home, "case", "service", case_id, "--kind", "legal", "--note", "x", expect=2)


def test_smtp_password_never_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANSIM_SMTP_PASSWORD", raising=False)
    monkeypatch.delenv("ANSIM_SMTP_PASSWORD_FILE", raising=False)
    with pytest.raises(ValueError, match="no password in a command-line SMTP URL"):
        SmtpSettings.from_url("smtps://user:hunter2@mail.example", password_in_url=False)
    monkeypatch.setenv("ANSIM_SMTP_PASSWORD", "from-env")
    settings = SmtpSettings.from_url("smtps://user@mail.example", password_in_url=False)
    assert settings.password == "from-env" and "from-env" not in repr(settings)
    monkeypatch.delenv("ANSIM_SMTP_PASSWORD")
    secret = tmp_path / "smtp-password"
    secret.write_text("from-file\n")
    secret.chmod(0o644)
    monkeypatch.setenv("ANSIM_SMTP_PASSWORD_FILE", str(secret))
    with pytest.raises(ValueError, match="readable by others"):
        SmtpSettings.from_url("smtps://user@mail.example")
    secret.chmod(0o600)
    assert SmtpSettings.from_url("smtps://user@mail.example").password == "from-file"


def test_credentials_over_plain_smtp_only_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIM_SMTP_PASSWORD", "pw")
    with pytest.raises(ValueError, match="unencrypted"):
        SmtpSettings.from_url("smtp://user@mail.example:25")
    assert SmtpSettings.from_url("smtp://user@127.0.0.1:2525").username == "user"
    assert SmtpSettings.from_url("smtp://mail.example:25").password is None  # no login


def test_unexpected_errors_print_a_short_message_and_go_to_the_log(
    ansim_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.app.pretty_exceptions_show_locals is False
    init_workspace()  # the key that seals the messages

    def broken() -> None:
        raise RuntimeError("contact 010-7777-8888 leaked into a message")

    monkeypatch.setattr(cli, "app", broken)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    printed = capsys.readouterr()
    assert "010-7777" not in printed.err + printed.out
    assert "unexpected error (RuntimeError)" in printed.err
    log = ansim_home / "logs" / "errors.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert "010-7777" not in log.read_text()  # sealed: only the frames are in the clear
    assert "test_input_and_secrets.py" in log.read_text()
    (logged,) = run(ansim_home, "log", "errors", "--json")
    assert logged["messages"] == ["contact 010-7777-8888 leaked into a message"]


# --- small defects found in review ----------------------------------------------------------


def test_case_ids_after_9999_in_a_year_do_not_collide(ansim_home: Path) -> None:
    workspace, _ = init_workspace()
    year = utcnow().year
    with workspace.session() as session:
        session.add(Case(id=f"C-{year}-9999", case_type="other"))
    assert cases.open_case(workspace, "other") == f"C-{year}-10000"
    # As strings, C-…-9999 > C-…-10000: the old allocation handed out 10000 again here.
    assert cases.open_case(workspace, "other") == f"C-{year}-10001"


@pytest.mark.parametrize(
    ("domain", "address"),
    [
        ("host.example", "abuse@host.example\n"),
        ("host.example", "abuse@host.example\r\nBcc: victim@else.example"),
        ("host.example\n", "abuse@host.example"),
        ("host.example\x00", "abuse@host.example"),
    ],
)
def test_control_characters_in_hosts_are_refused(
    ansim_home: Path, domain: str, address: str
) -> None:
    workspace, _ = init_workspace()
    with pytest.raises(CaseworkError, match="control character"):
        hosts.set_host(workspace, domain, address)


def test_hostile_file_names_neither_crash_nor_restyle_the_cli(
    ansim_home: Path, tmp_path: Path
) -> None:
    run(ansim_home, "init")
    folder = tmp_path / "hostile"
    folder.mkdir()
    names = ["[bold]styled.png", "[blink]restyled.png", "[link=http:x]linked.png"]
    for seed, name in enumerate(names):
        photo_like(folder / name, seed=seed)
    case_id = run(ansim_home, "case", "open", "--type", "other", "--json")["case_id"]
    done = run(ansim_home, "ref", "add", case_id, str(folder))
    for name in names:
        assert name in done.stdout.replace("\n", ""), done.stdout
    scanned = run(ansim_home, "scan", str(folder))
    assert "[blink]restyled.png" in scanned.stdout.replace("\n", "")


def test_text_that_is_not_valid_markup_prints_literally() -> None:
    """A URL like http://h/[/b] would make Rich raise MarkupError, in a table too."""
    console = SafeConsole(file=io.StringIO(), width=200)
    table = Table("location")
    table.add_row("http://h.example/[/b]/x.jpg")
    console.print("found at http://h.example/[/]")
    console.print(table)
    printed = console.file.getvalue()
    assert "http://h.example/[/]" in printed and "[/b]/x.jpg" in printed


def test_audit_anchor_and_key_commands(ansim_home: Path, tmp_path: Path) -> None:
    initialized = run(ansim_home, "init")
    assert "inside the home" in initialized.stderr  # the key beside the data it protects
    run(ansim_home, "case", "open", "--type", "other", "--contact-file", "-", stdin="x@y.z")
    anchor = tmp_path / "offsite" / "anchor.txt"
    anchor.parent.mkdir()
    shipped = run(ansim_home, "audit", "anchor", "--out", str(anchor), "--json")
    assert shipped["seq"] >= 1 and stat.S_IMODE(anchor.stat().st_mode) == 0o600
    assert run(ansim_home, "key", "rotate", "--json")["reencrypted"] >= 1
    assert run(ansim_home, "audit", "verify", "--anchor", str(anchor), "--json")["ok"] is True
    anchor.write_text("not an anchor\n")
    broken = run(ansim_home, "audit", "verify", "--anchor", str(anchor), expect=1)
    assert "malformed" in broken.stdout and "Traceback" not in broken.stderr
    assert (
        run(ansim_home, "case", "show", "C-2026-0001", "--reveal", "--json")["contact"] == "x@y.z"
    )
