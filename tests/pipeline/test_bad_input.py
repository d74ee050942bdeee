"""Bad input gets a clear per-item error, the run goes on, nothing half-written stays."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
from ansim.casework import cases
from ansim.casework.errors import CaseworkError, NotFound
from ansim.detector.errors import LowQuality, MediaError
from ansim.pipeline import intake, scanning
from ansim.pipeline.workspaces import init_workspace
from ansim.signal_types.hashing import hash_file
from ansim.store.tables import Reference, ScannedItem, Signal, Takedown
from PIL import Image
from sqlalchemy import func, select

from tests.helpers import photo_like


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims width x height pixels (all zero rows compress to nothing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 16)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    good = photo_like(tmp_path / "good.jpg", seed=1)
    data = good.read_bytes()
    files = {
        "truncated": tmp_path / "truncated.jpg",
        "corrupt": tmp_path / "corrupt.png",
        "empty": tmp_path / "empty.jpg",
        "binary": tmp_path / "letter.jpg",
        "flat": tmp_path / "flat.png",
        "bomb": png_bomb(tmp_path / "bomb.png", 40_000, 40_000),
        "vanished": tmp_path / "vanished.jpg",
    }
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["corrupt"].write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(3000))
    files["empty"].write_bytes(b"")
    # Text is a modality now (a .jpg holding text is hashed as text); unknown bytes are not.
    files["binary"].write_bytes(b"\x00\x01\x02\x03" * 300)
    Image.new("RGB", (200, 200), (128, 128, 128)).save(files["flat"])
    os.symlink(tmp_path / "gone.jpg", files["vanished"])
    files["good"] = good
    return files


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("truncated", "truncated"),
        ("corrupt", "not a readable image"),
        ("empty", "empty"),
        ("binary", "unsupported content (application/octet-stream)"),
        ("flat", "quality"),
        ("bomb", "decompression bomb"),
        ("vanished", "vanished"),
    ],
)
def test_each_bad_file_gets_a_clear_error(
    bad_files: dict[str, Path], name: str, message: str
) -> None:
    with pytest.raises(MediaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        hash_file(bad_files[name])


def test_low_quality_is_its_own_error(bad_files: dict[str, Path]) -> None:
    with pytest.raises(LowQuality):
        hash_file(bad_files["flat"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(bad_files: dict[str, Path]) -> None:
    os.chmod(bad_files["good"], 0)
    with pytest.raises(MediaError, match="not readable"):
        hash_file(bad_files["good"])


def test_ref_add_and_scan_go_on_past_bad_files(
    ansim_home: Path, bad_files: dict[str, Path]
) -> None:
    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "stalking")
    results = intake.add_reference_files(workspace, case_id, list(bad_files.values()))
    assert [r.error is None for r in results].count(True) == 1
    assert all(r.error for r in results if r.path != str(bad_files["good"]))
    report = scanning.scan_paths(workspace, list(bad_files.values()))
    assert report.scanned == len(bad_files)
    assert report.errors == len(bad_files) - 1
    assert len(report.matches) == 1
    with workspace.store.session() as session:
        # Failed files left no reference and no signals behind; failed scans are recorded as errors.
        assert session.execute(select(func.count(Reference.id))).scalar_one() == 1
        assert (
            session.execute(
                select(func.count(Signal.id)).where(
                    Signal.item_id.is_(None), Signal.kind.in_(["sha256", "md5", "pdq"])
                )
            ).scalar_one()
            == 3
        )
        errors = session.execute(
            select(func.count(ScannedItem.id)).where(ScannedItem.error.is_not(None))
        )
        assert errors.scalar_one() == len(bad_files) - 1


def test_unknown_ids_are_refused(ansim_home: Path, bad_files: dict[str, Path]) -> None:
    workspace, _ = init_workspace()
    with pytest.raises(NotFound, match="unknown case"):
        intake.add_reference_files(workspace, "C-2026-9999", [bad_files["good"]])
    with pytest.raises(NotFound):
        intake.withdraw_reference(workspace, 12345)
    with pytest.raises(CaseworkError, match="case type"):
        cases.open_case(workspace, "burglary")


def test_malformed_hash_list_lines_are_reported_and_valid_ones_kept(
    ansim_home: Path, tmp_path: Path
) -> None:
    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "other")
    listing = tmp_path / "hashes.txt"
    listing.write_text(
        "# shared by a partner hotline\n"
        f"{'a' * 64},first\n"
        "not-a-hash\n"
        f"{'b' * 63}\n"
        "\n"
        f"0x{'c' * 64}\n"
        f"{'g' * 64},bad hex\n"
    )
    report = intake.import_hash_list(workspace, case_id, listing, "pdq")
    assert (report.imported, report.first_reference_id, report.last_reference_id) == (2, 1, 2)
    assert [(r.line, r.error.split(" (")[0]) for r in report.rejections] == [
        (3, "not a pdq hash"),
        (4, "not a pdq hash"),
        (7, "not a pdq hash"),
    ]
    exported: list[str] = []
    assert intake.export_hash_list(workspace, "pdq", exported.append) == 2
    assert "".join(exported) == f"{'a' * 64},ref-1\n{'c' * 64},ref-2\n"


def test_dry_run_records_nothing(ansim_home: Path, bad_files: dict[str, Path]) -> None:
    workspace, _ = init_workspace()
    case_id = cases.open_case(workspace, "other")
    intake.add_reference_files(workspace, case_id, [bad_files["good"]])
    report = scanning.scan_paths(workspace, [bad_files["good"], bad_files["empty"]], dry_run=True)
    assert len(report.matches) == 1 and report.matches[0].takedown_id is None
    with workspace.store.session() as session:
        assert session.execute(select(func.count(ScannedItem.id))).scalar_one() == 0
        assert session.execute(select(func.count(Takedown.id))).scalar_one() == 0
