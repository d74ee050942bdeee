"""vPDQ's text format: Meta's files read, ours written the same way, bad files refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansim.detector.signals import FrameHash
from ansim.detector.vpdq_format import (
    VpdqFormatError,
    format_videos,
    format_vpdq,
    parse_vpdq,
    read_vpdq_file,
    split_videos,
)

HASH = "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c"


def test_round_trip_is_byte_identical_to_meta_files(shared_data: Path) -> None:
    path = shared_data / "threatexchange/vpdq/sample-hashes/chair-19-sd-bar.txt"
    if not path.exists():
        pytest.skip(f"missing {path}")
    frames = read_vpdq_file(path)
    assert len(frames) == 564 and frames[1] == FrameHash(frames[1].pdq, 100, 1, 0.033)
    assert format_vpdq(frames) == path.read_text()


def test_line_format() -> None:
    assert format_vpdq([FrameHash(HASH, 87, 30, 1.0)]) == f"30,87,{HASH},1.000\n"


@pytest.mark.parametrize(
    "line, problem",
    [
        (f"0,100,{HASH}", "4 comma-separated"),
        (f"0,101,{HASH},0.0", "quality 101"),
        (f"-1,100,{HASH},0.0", "negative"),
        (f"0,100,{HASH[:-2]},0.0", "64 hex digits"),
        (f"0,100,{HASH},nan", "not a time"),
        ("x,100,zz,0", "invalid literal"),
    ],
)
def test_bad_lines_are_named(line: str, problem: str) -> None:
    with pytest.raises(VpdqFormatError, match=problem) as raised:
        parse_vpdq(f"0,100,{HASH},0.000\n{line}\n", source="shared.txt")
    assert "line 2" in str(raised.value) and "shared.txt" in str(raised.value)


def test_empty_and_binary_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(VpdqFormatError, match="no vPDQ frame"):
        parse_vpdq("\n# nothing\n")
    binary = tmp_path / "x.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(VpdqFormatError):
        read_vpdq_file(binary)


def test_several_videos_in_one_text() -> None:
    one = [FrameHash(HASH, 90, 0, 0.0)]
    two = [FrameHash(HASH, 80, 0, 0.0), FrameHash(HASH, 80, 30, 1.0)]
    assert format_videos([("ref-1", one)]) == format_vpdq(one)  # one video stays plain
    text = format_videos([("ref-1", one), ("ref-2", two)])
    assert split_videos(text) == [("ref-1", one), ("ref-2", two)]
    assert split_videos(format_vpdq(two)) == [(None, two)]
