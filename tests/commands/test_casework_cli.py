"""The casework commands through the real `ansim` executable, on SQLite and PostgreSQL.
(The workflow itself is tested at the service level; this checks the commands' wiring,
output and exit codes.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ansim.casework import confirmations
from ansim.pipeline.workspaces import init_workspace

from tests.casework.test_casework_workflow import media_server  # noqa: F401 - fixture
from tests.casework_fixtures import as_analyst, found_at, open_case_with_reference, reposted_copy

ANSIM = str(Path(sys.executable).parent / "ansim")


def run(env: dict[str, str], *args: str, expect: int = 0, analyst: str = "kim") -> Any:
    done = subprocess.run(
        [ANSIM, *args],
        env={**env, "ANSIM_ANALYST": analyst},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == expect, f"ansim {' '.join(args)} -> {done.returncode}\n{done.stderr}"
    return (
        json.loads(done.stdout) if "--json" in args and expect != 2 else done.stdout + done.stderr
    )


def test_host_notice_recheck_report_close(
    backend_home: Path,
    tmp_path: Path,
    smtp_server,
    media_server,  # noqa: F811, ANN001
) -> None:
    smtp_url, smtp = smtp_server
    base, files = media_server
    workspace, _ = init_workspace()
    workspace = as_analyst(workspace, "crawler")
    case_id, _, reference = open_case_with_reference(workspace, tmp_path, seed=21)
    copy = reposted_copy(reference, tmp_path / "copy.jpg")
    [online] = found_at(workspace, copy, f"{base}/online.jpg")
    [gone] = found_at(workspace, copy, f"{base}/gone.jpg")
    [busy] = found_at(workspace, copy, f"{base}/busy.jpg")
    [orphan] = found_at(workspace, copy, "https://no-contact.example/x.jpg")
    for item in (gone, busy, orphan):
        confirmations.confirm(workspace, item)
    workspace.close()
    files["/online.jpg"] = (200, copy.read_bytes(), "image/jpeg")
    files["/busy.jpg"] = (503, b"", "text/plain")
    env = {
        **os.environ,
        "ANSIM_SMTP_URL": smtp_url,
        "ANSIM_NOTICE_FROM": "takedown@center.example",
        "ANSIM_NOTICE_ORG": "테스트 지원센터",
        "ANSIM_ALLOW_LOOPBACK": "1",
    }

    set_rule = run(env, "queue", "policy", "digital-sex-crime", "--confirmations", "2")
    assert "without ANSIM_SERVER" in set_rule and "(now kim)" in set_rule  # one operator
    first = run(env, "queue", "confirm", str(online))
    assert "confirmation 1 of 2 recorded" in first and "without ANSIM_SERVER" in first
    run(env, "queue", "confirm", str(online), expect=2)  # the same analyst twice
    assert (
        run(env, "queue", "confirm", str(online), "--json", analyst="lee")["status"] == "confirmed"
    )
    run(env, "host", "set", "127.0.0.1", "--abuse-email", "abuse@loop.example", "--lang", "ko")
    assert "not a valid domain" in run(env, "host", "set", "bad..example", expect=2)

    drafted = run(env, "notice", "draft", "--out", str(tmp_path / "out"), "--json", expect=1)
    assert drafted["notices"][0]["takedowns"] == [online, gone, busy]
    assert drafted["skipped"][0]["id"] == orphan  # no contact for its host: exit 1
    assert (tmp_path / "out" / "regulator.csv").exists()
    sent = run(env, "notice", "send", "--json")
    assert sent["sent"][0]["takedowns"] == [online, gone, busy] and len(smtp.messages) == 1

    checked = run(  # 1: busy; one gone answer suffices here (--gone-days 1)
        env, "queue", "recheck", "--no-resend", "--gone-days", "1", "--json", expect=1
    )
    assert {c["id"]: c["after"] for c in checked["checked"]} == {
        online: "still_online",
        gone: "removed",
        busy: "notice_sent",
    }

    plot = tmp_path / "report.png"
    report = run(env, "report", "--since", "2020-01-01", "--plot", str(plot), "--json")
    assert report["by_status"] == {
        "confirmed": 1,
        "notice_sent": 1,
        "still_online": 1,
        "removed": 1,
    }
    assert report["detection_to_removal"]["count"] == 1
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert "not a date" in run(env, "report", "--since", "2026-13-01", expect=2)

    closed = run(env, "case", "close", case_id, "--purge", "--yes", "--json")
    assert closed["deleted"]["contact"] is True and closed["index_entries_removed"] >= 1
    assert run(env, "audit", "verify", "--json")["ok"] is True


def test_embedded_mode_says_it_cannot_enforce_a_two_person_rule(ansim_home: Path) -> None:
    """Without ANSIM_SERVER every command acts as whoever ANSIM_ANALYST names: the rule
    display and rule changes say so once a rule needs two people, and only then."""
    init_workspace()[0].close()
    env = {**os.environ, "ANSIM_LANG": "en"}
    env.pop("ANSIM_SERVER", None)
    assert "ANSIM_SERVER" not in run(env, "queue", "policy")
    shown = run(env, "queue", "policy", "digital-sex-crime", "--confirmations", "2")
    assert "warning: digital-sex-crime need more than one analyst" in shown
    assert "ANSIM_SERVER" in run(env, "queue", "policy", analyst="lee")
    as_json = subprocess.run(
        [ANSIM, "queue", "policy", "--json"], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(as_json.stdout)["digital-sex-crime"] == 2  # the warning is on stderr
    assert "ANSIM_SERVER" in as_json.stderr
    korean = run({**env, "ANSIM_LANG": "ko"}, "queue", "policy")
    assert "경고:" in korean and "ANSIM_SERVER" in korean
    run(env, "queue", "policy", "digital-sex-crime", "--confirmations", "1")
    assert "ANSIM_SERVER" not in run(env, "queue", "policy")
