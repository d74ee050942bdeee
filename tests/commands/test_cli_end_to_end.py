"""The analyst's path through the real `ansim` command, as the README shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps

from tests.helpers import photo_like

ANSIM = str(Path(sys.executable).parent / "ansim")


# About 20 fresh `ansim` processes, each importing the detector stack: 5-15 s each on a
# loaded 2-core CI machine.
pytestmark = pytest.mark.timeout(900)


def run(home: Path, *args: str, expect: int = 0, stdin: str | None = None) -> Any:
    env = {**os.environ, "ANSIM_HOME": str(home), "ANSIM_ANALYST": "analyst-kim"}
    env.pop("ANSIM_DB_URL", None)
    done = subprocess.run(
        [ANSIM, *args], env=env, capture_output=True, text=True, timeout=120, input=stdin
    )
    assert done.returncode == expect, f"ansim {' '.join(args)} -> {done.returncode}\n{done.stderr}"
    return json.loads(done.stdout) if "--json" in args else done.stdout


def test_init_case_ref_scan_queue_audit(tmp_path: Path) -> None:
    home = tmp_path / "home"
    reported = [photo_like(tmp_path / f"reported{i}.png", seed=i) for i in range(2)]
    collected = tmp_path / "collected"
    collected.mkdir()
    Image.open(reported[0]).convert("RGB").resize((200, 150)).save(collected / "a.jpg", quality=50)
    ImageOps.mirror(Image.open(reported[1])).save(collected / "b.webp")
    photo_like(collected / "unrelated.png", seed=99)
    (collected / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")

    assert run(home, "init", "--json")["key_created"] is True
    case_id = run(
        home, "case", "open", "--type", "digital-sex-crime", "--pseudonym", "Blue", "--json"
    )["case_id"]
    assert case_id.startswith("C-") and case_id.endswith("-0001")
    added = run(home, "ref", "add", case_id, *map(str, reported), "--json")
    assert [a["error"] for a in added] == [None, None] and added[0]["modality"] == "image"

    hashed = run(home, "hash", str(reported[0]), "--json")
    assert set(hashed[0]["signals"]) >= {"sha256", "md5", "pdq", "pdq_quality"}

    report = run(home, "scan", str(collected), "--json", expect=1)  # 1: broken.jpg failed
    assert report["scanned"] == 4 and report["errors"] == 1
    found = {Path(m["path"]).name: m for m in report["matches"]}
    assert set(found) == {"a.jpg", "b.webp"}
    assert found["b.webp"]["reference_id"] == added[1]["reference_id"]
    assert all(m["case_id"] == case_id and m["signal"] == "pdq" for m in found.values())

    queued = run(home, "queue", "list", "--status", "new", "--json")
    assert len(queued) == 2 and {q["status"] for q in queued} == {"new"}
    first = queued[0]["id"]
    run(home, "queue", "confirm", str(first), "--json")
    rejected = str(queued[1]["id"])
    run(home, "queue", "reject", rejected, "--reason-file", "-", "--json", stdin="different person")
    run(home, "queue", "confirm", str(first), expect=2)  # confirmed items cannot be confirmed again
    shown = run(home, "queue", "show", str(first), "--json")
    assert [h["to"] for h in shown["history"]] == ["new", "confirmed"]
    assert shown["history"][1]["by"] == "analyst-kim"

    # Scanning the same folder again queues nothing new.
    again = run(home, "scan", str(collected), "--json", expect=1)
    assert sorted(m["takedown_id"] for m in again["matches"]) == sorted(q["id"] for q in queued)

    assert run(home, "audit", "verify", "--json")["ok"] is True
    run(home, "case", "show", "C-2099-0001", expect=2)


def test_commands_refuse_to_run_without_init(tmp_path: Path) -> None:
    run(tmp_path / "nowhere", "case", "list", expect=2)
