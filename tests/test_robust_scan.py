"""Robust image matching through the real `ansim` command: a cropped, pasted copy that
PDQ misses is found, explained, and forgotten when consent is withdrawn."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image

from tests.test_cli_end_to_end import run

PHOTOS = ("100007.jpg", "16068.jpg", "100039.jpg", "128035.jpg")


def test_scan_finds_a_cropped_pasted_copy_and_withdrawal_forgets_it(
    shared_data: Path, tmp_path: Path
) -> None:
    from ansim.benchmarks.hard_transforms import HARD_TRANSFORMS

    folder = shared_data / "images" / "bsds500" / "test"
    if not all((folder / name).is_file() for name in PHOTOS):
        pytest.skip("bsds500/test photos missing")
    first, second, background, unrelated = (Image.open(folder / n).convert("RGB") for n in PHOTOS)
    collected = tmp_path / "collected"
    collected.mkdir()
    HARD_TRANSFORMS["crop20+screenshot"](first, random.Random(1), [background]).save(
        collected / "screenshot.jpg", quality=85
    )
    HARD_TRANSFORMS["paste"](second, random.Random(2), [background]).save(collected / "paste.png")
    unrelated.save(collected / "unrelated.jpg")
    home = tmp_path / "home"
    run(home, "init", "--json")
    case_id = run(home, "case", "open", "--type", "stalking", "--json")["case_id"]
    added = run(
        home, "ref", "add", case_id, str(folder / PHOTOS[0]), str(folder / PHOTOS[1]), "--json"
    )
    assert [a["error"] for a in added] == [None, None]
    hashed = run(home, "hash", str(folder / PHOTOS[0]), "--json")
    assert hashed[0]["signals"]["orb"]["keypoints"] > 500

    report = run(home, "scan", str(collected), "--json")
    found = {Path(m["path"]).name: m for m in report["matches"]}
    assert set(found) == {"screenshot.jpg", "paste.png"}
    assert found["screenshot.jpg"]["reference_id"] == added[0]["reference_id"]
    assert found["paste.png"]["reference_id"] == added[1]["reference_id"]
    for match in found.values():
        assert "verification" in match["signal"] or "descriptor" in match["signal"]
        # The explanation names the evidence that fired (with the descriptor or without it).
        assert "fired" in match["explanation"]
        assert any(
            name in match["explanation"] for name in ("local features", "descriptor similarity")
        )
    assert "inside a larger picture" in found["paste.png"]["explanation"]

    status = run(home, "index", "status", "--json")
    assert status["sizes"]["orb"] >= 2
    run(home, "ref", "withdraw", str(added[0]["reference_id"]), "--json")
    assert run(home, "index", "status", "--json")["sizes"]["orb"] == (status["sizes"]["orb"] - 1)
    again = run(home, "scan", str(collected), "--json", "--dry-run")
    assert {Path(m["path"]).name for m in again["matches"]} == {"paste.png"}
