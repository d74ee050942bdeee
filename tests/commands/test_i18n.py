"""One message catalogue, Korean and English: every message the commands show has its
Korean, with the same placeholders, and a Korean run of a few commands reads Korean."""

from __future__ import annotations

import ast
import os
import string
import subprocess
import sys
from pathlib import Path

import pytest
from ansim import i18n
from ansim.i18n.ko import MESSAGES

REPO = Path(__file__).resolve().parents[2]
ANSIM = str(Path(sys.executable).parent / "ansim")
SOURCES = [*sorted((REPO / "commands").glob("*.py")), REPO / "cli.py"]


def messages_in_code() -> dict[str, str]:
    """Every `_("literal")` in the command line's code -> where it is."""
    found: dict[str, str] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_":
                [argument] = node.args
                # Words from the data (`_(item["status"])`) are checked as vocabulary below.
                if isinstance(argument, ast.Constant):
                    found.setdefault(argument.value, f"{path.name}:{node.lineno}")
    return found


def shown_vocabulary() -> set[str]:
    """Statuses, types and kinds the commands pass through `_()` from the data."""
    from ansim.casework.notice_service import NOTICE_STATUSES
    from ansim.casework.references import MODALITIES
    from ansim.store.tables import TAKEDOWN_STATUSES
    from ansim.store.vocabulary import CASE_TYPES, SERVICE_KINDS

    words = {*CASE_TYPES, *SERVICE_KINDS, *TAKEDOWN_STATUSES, *NOTICE_STATUSES, *MODALITIES}
    return words | {"open", "closed", "given", "withdrawn"}


def fields(message: str) -> set[str]:
    return {name for _text, name, _spec, _conv in string.Formatter().parse(message) if name}


def test_every_message_has_its_korean() -> None:
    in_code = messages_in_code()
    assert len(in_code) > 100  # the scan found the commands' messages
    missing = {message: where for message, where in in_code.items() if message not in MESSAGES}
    assert not missing, f"no Korean for: {missing}"
    vocabulary = shown_vocabulary() - set(MESSAGES)
    assert not vocabulary, f"no Korean for: {vocabulary}"


# Developer tools, whose help stays English.
ENGLISH_ONLY_GROUPS = ("bench", "model")


def help_texts() -> dict[str, str]:
    """Every command's and option's help of the commands analysts use -> whose it is."""
    import typer
    from ansim.cli import GROUPS, app

    found: dict[str, str] = {}

    def walk(command: object, path: str) -> None:
        if command.help:
            found.setdefault(command.help, path)
        for param in command.params:
            if getattr(param, "help", None):
                found.setdefault(param.help, f"{path} {param.name}")
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, f"{path} {name}")

    for name, command in typer.main.get_command(app).commands.items():
        walk(command, name)
    for name, group in GROUPS.items():
        if name not in ENGLISH_ONLY_GROUPS:
            walk(typer.main.get_group(group.load()), name)
    return found


def test_every_help_text_has_its_korean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIM_LANG", "en")  # the English texts, as the code has them
    i18n.language.cache_clear()
    try:
        texts = help_texts()
    finally:
        i18n.language.cache_clear()
    assert len(texts) > 80
    missing = {where: text for text, where in texts.items() if text not in MESSAGES}
    assert not missing, f"no Korean help for: {missing}"


def test_translations_keep_their_placeholders() -> None:
    for english, korean in MESSAGES.items():
        assert fields(english) == fields(korean), english
        assert korean.strip() and korean != english or english.startswith("--"), english


def test_language_comes_from_ansim_lang_then_the_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("ANSIM_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    cases = [
        ({}, "en"),
        ({"LANG": "ko_KR.UTF-8"}, "ko"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LC_ALL": "ko_KR.UTF-8", "LANG": "en_US.UTF-8"}, "ko"),
        ({"ANSIM_LANG": "en", "LANG": "ko_KR.UTF-8"}, "en"),
        ({"ANSIM_LANG": "ko", "LANG": "C"}, "ko"),
    ]
    try:
        for env, expected in cases:
            with monkeypatch.context() as patched:
                for name, value in env.items():
                    patched.setenv(name, value)
                i18n.language.cache_clear()
                assert i18n.language() == expected, env
    finally:
        i18n.language.cache_clear()


def run(env: dict[str, str], *args: str, expect: int = 0) -> str:
    done = subprocess.run([ANSIM, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == expect, f"ansim {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def test_a_korean_run(ansim_home: Path) -> None:
    env = {**os.environ, "COLUMNS": "80", "ANSIM_ANALYST": "kim"}
    env.pop("ANSIM_LANG", None)
    korean = {**env, "LANG": "ko_KR.UTF-8", "LC_ALL": "ko_KR.UTF-8"}
    assert "ansim 홈 준비됨" in run(korean, "init")
    opened = run(korean, "case", "open", "--type", "stalking", "--pseudonym", "파랑")
    assert opened.strip() == "사례 C-2026-0001 개시"
    listed = run(korean, "case", "list")
    assert "사례" in listed and "스토킹" in listed and "C-2026-0001" in listed
    shown = run(korean, "case", "show", "C-2026-0001")
    assert "유형:" in shown and "진행 중" in shown
    assert "오류: unknown case id" in run(korean, "case", "show", "C-1999-0001", expect=2)
    assert "삭제 대기열." in run(korean, "--help")
    assert "지원 사례를 엽니다." in run(korean, "case", "open", "--help")
    english = run({**env, "ANSIM_LANG": "en", "LANG": "ko_KR.UTF-8"}, "case", "list")
    assert "stalking" in english and "스토킹" not in english
