"""`ansim ref list`: every reference with its case, modality, signals, bank entries, consent."""

from __future__ import annotations

import json
from pathlib import Path

from ansim.cli import app
from ansim.detector.hashing import HashOptions
from ansim.pipeline import intake
from ansim.pipeline.workspaces import init_workspace
from typer.testing import CliRunner

from tests.casework_fixtures import open_case_with_reference

RUNNER = CliRunner()


def ref_list(*args: str, expect: int = 0) -> str:
    done = RUNNER.invoke(app, ["ref", "list", *args], env={"COLUMNS": "80", "ANSIM_LANG": "en"})
    assert done.exit_code == expect, done.output
    return done.output


def test_ref_list_filters_and_counts(ansim_home: Path, tmp_path: Path) -> None:
    workspace, _ = init_workspace()
    first, image_ref, _ = open_case_with_reference(workspace, tmp_path / "a", seed=41)
    second, other_ref, _ = open_case_with_reference(workspace, tmp_path / "b", seed=42)
    [text] = intake.add_reference_texts(
        workspace, first, [("post", "비공개 사진을 올린 게시물입니다 " * 3)], HashOptions()
    )
    intake.withdraw_reference(workspace, other_ref, "victim asked")
    workspace.close()

    listed = json.loads(ref_list("--json"))
    assert [r["id"] for r in listed] == [image_ref, other_ref, text.reference_id]
    by_id = {r["id"]: r for r in listed}
    image = by_id[image_ref]
    assert image["case_id"] == first and image["modality"] == "image"
    assert image["consent"] == "given" and image["signals"]["pdq"] == 1
    assert 0 < image["bank_entries"] < sum(image["signals"].values())  # digests stay out
    assert by_id[other_ref]["consent"] == "withdrawn"
    assert by_id[other_ref]["signals"] == {} and by_id[other_ref]["bank_entries"] == 0
    assert by_id[text.reference_id]["modality"] == "text"
    assert by_id[text.reference_id]["bank_entries"] == 1  # its MinHash signature

    only_first = json.loads(ref_list("--case", first, "--json"))
    assert {r["id"] for r in only_first} == {image_ref, text.reference_id}
    only_text = json.loads(ref_list("--modality", "text", "--json"))
    assert [r["id"] for r in only_text] == [text.reference_id]

    table = ref_list("--case", second)
    assert f"│ {other_ref} " in table and second in table and "withdrawn" in table
    assert "unknown case id" in ref_list("--case", "C-1999-0001", expect=2)
    assert "modality must be one of" in ref_list("--modality", "smell", expect=2)
