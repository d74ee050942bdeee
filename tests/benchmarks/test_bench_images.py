"""`bench images` end to end on a tiny generated folder, and its bad-input paths."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from ansim.benchmarks.fast_decode import RULE_MAX_DISTANCE, check_fast_decode
from ansim.benchmarks.fast_decode import main as fast_decode_main
from ansim.benchmarks.images import (
    ImageBenchConfig,
    find_images,
    main,
    run_image_benchmark,
    write_report,
)
from ansim.detector import image as detector_image

from tests.helpers import photo_like

ANSIM = str(Path(sys.executable).parent / "ansim")


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    (folder / "nested").mkdir(parents=True)
    for i in range(3):
        photo_like(folder / f"img{i}.png", seed=i)
    for i in range(3, 6):
        photo_like(folder / "nested" / f"img{i}.jpg", seed=i)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 64)  # JPEG magic, no data
    return folder


def test_report_on_a_small_folder(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = ImageBenchConfig(
        data=image_folder, out=out, seed=1, transforms=["jpeg_q75", "flip", "crop_40"]
    )
    report = run_image_benchmark(config)
    write_report(report, out)

    data = report["dataset"]
    assert data["images_found"] == 7  # the text file is not an image, the broken JPEG is
    assert list(data["unreadable_sources"]) == ["broken.jpg"]
    assert data["positive_queries"] + data["distractor_queries"] == data["queries"] == 6 * 3
    # Distinct random images: ansim finds every JPEG and mirrored copy, claims nothing false.
    assert report["per_transform"]["jpeg_q75"]["recall"] == 1.0
    assert report["per_transform"]["flip"]["recall"] == 1.0
    assert report["precision"] == 1.0
    assert 0.0 <= report["muap"] <= report["recall"] <= 1.0
    assert report["images_per_s"] > 0 and report["images_per_s_full_decode"] > 0
    peer = report["peers"]["imagehash_phash"]
    assert set(peer["per_transform"]) == {"jpeg_q75", "flip", "crop_40"}
    assert peer["per_transform"]["jpeg_q75"]["recall"] == 1.0
    assert report["fast_decode_rule"]["passes"]

    written = json.loads((out / "report.json").read_text())
    assert written["muap"] == report["muap"]
    assert "| flip |" in (out / "report.md").read_text()
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_numbers(image_folder: Path, tmp_path: Path) -> None:
    def run() -> dict:
        config = ImageBenchConfig(
            data=image_folder,
            out=tmp_path,
            seed=5,
            limit=4,
            transforms=["crop_20", "text_overlay"],
            check_fast_decode=False,
        )
        return run_image_benchmark(config)

    first, second = run(), run()
    for report in (first, second):
        report.pop("run")
        for system in [report, *report["peers"].values()]:
            system.pop("images_per_s"), system.pop("images_per_s_full_decode", None)
        report["full_decode"].pop("images_per_s")
    assert first == second


def test_bad_arguments_exit_2(tmp_path: Path, image_folder: Path) -> None:
    assert main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    for limit in ("1", "-3"):
        assert (
            main(["--data", str(image_folder), "--out", str(tmp_path / "o"), "--limit", limit]) == 2
        )
    assert (
        main(["--data", str(image_folder), "--out", str(tmp_path / "o"), "--transforms", "x"]) == 2
    )


def test_cli_command(image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-out"
    args = ["bench", "images", "--data", str(image_folder), "--out", str(out)]
    done = subprocess.run(
        [ANSIM, *args, "--transforms", "flip", "--no-fast-decode-check", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["per_transform"]["flip"]["recall"] == 1.0
    assert report["peers"]["imagehash_phash"]["per_transform"]["flip"]["recall"] == 0.0
    assert json.loads((out / "report.json").read_text()) == report
    refused = subprocess.run(
        [ANSIM, *args, "--transforms", "sepia"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and "unknown transform" in refused.stderr


def test_fast_decode_tool_tries_other_sides(
    image_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The tool sets the module constant for its process: keep this test process clean.
    monkeypatch.setattr(detector_image, "FAST_DECODE_SIDE", detector_image.FAST_DECODE_SIDE)
    assert fast_decode_main([str(image_folder), "--side", "64"]) in (0, 1)
    summary = json.loads(capsys.readouterr().out)
    assert summary["fast_decode_side"] == 64
    assert summary["images"] == 6 and summary["errors"] == 1  # broken.jpg
    assert summary["reduced"] == 6  # every 320x240 image shrinks when 64 px suffice


def test_fast_decode_rule_on_shared_images(shared_data: Path) -> None:
    """Reduced decoding stays within 10 bits of full decoding for quality >= 80.

    Meta's PDQ test images (their 12-megapixel EXIF photos are the ones the fast path
    really shrinks) and a seeded sample of the benchmark photos. The full check:
    `ansim bench images` covers every photo of its folder, and
    `python -m ansim.benchmarks.fast_decode ../shared/data/threatexchange/pdq` all of Meta's.
    """
    meta = shared_data / "threatexchange" / "pdq"
    photos = shared_data / "images"
    if not meta.is_dir() or not photos.is_dir():
        pytest.skip("shared PDQ test images or photos missing")
    # Two of the four 12-megapixel EXIF photos (each costs seconds to decode in full),
    # including exif-rotn-3, the farthest from its full decode (6 bits), then samples.
    large = [meta / "data/reg-test-input/exif-rotn" / f"exif-rotn-{n}.jpg" for n in (1, 3)]
    others = [p for p in find_images(meta) if "exif-rotn" not in p.parts]
    sample = random.Random(0).sample(others, 10) + random.Random(0).sample(find_images(photos), 10)
    report = check_fast_decode([p for p in large if p.is_file()] + sample)
    assert len(report.ruled) >= 15
    assert any(s.reduced for s in report.ruled), "no image exercised the reduced path"
    assert not report.violations, [(s.path, s.distance) for s in report.violations]
    assert max(s.distance for s in report.ruled) <= RULE_MAX_DISTANCE
