"""What a person reads: labelled fields instead of Python reprs, and tables whose id columns
stay whole in an 80-column terminal (through the real `ansim` executable)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ansim.casework import confirmations, hosts, notice_service
from ansim.commands.display import Column, fitted_table
from ansim.pipeline import crawl as crawling
from ansim.pipeline.workspaces import init_workspace
from rich.console import Console

from tests.casework.test_casework_workflow import media_server  # noqa: F401 - fixture
from tests.casework_fixtures import open_case_with_reference, reposted_copy

ANSIM = str(Path(sys.executable).parent / "ansim")
REPRS = ("{'", "[(", "datetime.", "': ")


def ansim(*args: str, columns: int = 80) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "ANSIM_LANG": "en", "ANSIM_ANALYST": "kim"}
    done = subprocess.run([ANSIM, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"ansim {' '.join(args)} -> {done.returncode}\n{done.stderr}"
    return done.stdout


def assert_readable(text: str, table: bool = False) -> None:
    for marker in REPRS:
        assert marker not in text, f"{marker!r} in:\n{text}"
    if table:
        assert max(len(line) for line in text.splitlines()) <= 80, text


def test_commands_print_labelled_fields_and_whole_ids(
    ansim_home: Path,
    tmp_path: Path,
    media_server,  # noqa: F811, ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, files = media_server
    monkeypatch.setenv("ANSIM_ANALYST", "kim")
    workspace, _ = init_workspace()
    case_id, reference_id, reference = open_case_with_reference(workspace, tmp_path, seed=31)
    copy = reposted_copy(reference, tmp_path / "copy.jpg")
    # A long URL: the location column must wrap (or go) while the ids stay whole.
    path = "/forum/board/general/thread-000123456789/attachments/copy-of-the-photo.jpg"
    files[path] = (200, copy.read_bytes(), "image/jpeg")
    summary = crawling.scan_urls(workspace, [base + path], allow_loopback=True)
    [item] = summary.takedowns
    confirmations.confirm(workspace, item, "same photo")
    hosts.set_host(workspace, "127.0.0.1", "abuse@loop.example", None, "ko")
    sender = notice_service.Sender(organization="Center", email="t@center.example", phone=None)
    [notice] = notice_service.draft(workspace, sender, tmp_path / "notices", None).notices
    workspace.close()

    shown = ansim("queue", "show", str(item))
    assert_readable(shown)
    assert re.search(r"^  distance: \d+$", shown, re.M)  # rounded, indented under match
    assert re.search(r"^  #1 sealed .*, WARC records: 1$", shown, re.M)
    assert re.search(r"^    WARC SHA-256: [0-9a-f]{64}$", shown, re.M)
    # History, indented; the confirmation's note is encrypted, not part of the history.
    assert "new -> confirmed  by kim" in shown and "same photo" not in shown
    full = json.loads(ansim("queue", "show", str(item), "--json"))
    assert full["match"]["distance"] is not None and full["evidence"][0]["records"] >= 1

    case = ansim("case", "show", case_id)
    assert_readable(case)
    assert "stored encrypted" in case and "010-1234-5678" not in case
    assert f"│ {reference_id}" in case  # its references, listed

    for args in (
        ("case", "list"),
        ("queue", "list"),
        ("ref", "list"),
        ("notice", "list"),
        ("host", "list"),
    ):
        table = ansim(*args)
        assert_readable(table, table=True)
        ids = {"case": case_id, "queue": str(item), "ref": str(reference_id)}
        ids |= {"notice": notice["ref"], "host": "127.0.0.1"}
        assert f"│ {ids[args[0]]} " in table, table
    assert case_id in ansim("queue", "list")  # the case column too
    assert notice["ref"] in ansim("notice", "list", columns=40)  # even when narrower

    exported = ansim("evidence", "export", str(full["evidence"][0]["id"]), str(tmp_path / "out"))
    assert_readable(exported)
    assert re.search(r"^WARC SHA-256: [0-9a-f]{64} \(verified\)$", exported, re.M)
    assert re.search(r"^  \S+\.warc\.gz$", exported, re.M)  # each file written, indented

    shown_notice = ansim("notice", "show", notice["ref"])
    assert_readable(shown_notice)
    assert re.search(rf"^items: +{item}$", shown_notice, re.M)

    post = tmp_path / "post.txt"
    post.write_text("이 사람 집 주소는 서울시 마포구 예시로 12길 34 입니다. " * 3, encoding="utf-8")
    hashed = ansim("hash", str(post), str(copy))
    assert_readable(hashed)
    assert re.search(r"^    hashvalues: +\S+… \(\d+ characters; --json has all\)$", hashed, re.M)

    status = ansim("index", "status")
    assert_readable(status)
    assert "pdq:" in status


def test_fitted_table_drops_least_important_columns_in_a_stable_order() -> None:
    console = Console(width=50, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    columns = [
        Column("id", key=True),
        Column("case", key=True),
        Column("note", keep=1),
        Column("when", keep=0),
        Column("status", keep=2),
    ]
    rows = [("12345", "C-2026-0001", "a long note " * 4, "2026-12-03 17:02", "confirmed")]
    console.print(fitted_table(console, columns, rows))
    text = console.export_text()
    assert "12345" in text and "C-2026-0001" in text and "confirmed" in text
    assert "2026-12-03" not in text.split("not shown")[0]  # `when` went first
    assert "not shown at this width: when" in text
    assert max(len(line) for line in text.splitlines()) <= 50
    narrow = Console(width=38, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    narrow.print(fitted_table(narrow, columns, rows))
    text = narrow.export_text()
    assert "12345" in text and "C-2026-0001" in text
    assert "not shown at this width: note, when" in text  # then `note`, before `status`
