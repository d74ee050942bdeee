"""Video through the real `ansim` command: ref add, scan (clip, thumbnail, flipped copy),
hash --format vpdq, and vPDQ import/export."""

from __future__ import annotations

from pathlib import Path

import av
from ansim.benchmarks.video_dataset import TRANSFORMS, apply_transform, cut_clip
from ansim.detector.vpdq_format import parse_vpdq, split_videos

from tests.commands.test_cli_end_to_end import run
from tests.video_media import photos, slideshow


def test_video_reference_scan_and_vpdq_exchange(tmp_path: Path) -> None:
    home = tmp_path / "home"
    reported = slideshow(tmp_path / "reported.mp4", photos(tmp_path / "a", 6), 24, seed=1)
    other = slideshow(tmp_path / "other.mp4", photos(tmp_path / "b", 4, 40), 16, seed=2)
    collected = tmp_path / "collected"
    collected.mkdir()
    cut_clip(reported, collected / "clip.mp4", start_s=8.3, length_s=10)
    apply_transform(reported, collected / "flipped.mp4", TRANSFORMS["hflip"])
    with av.open(str(reported)) as container:
        frame = next(f for f in container.decode(video=0) if f.time >= 18.0)
    frame.to_image().save(collected / "thumb.jpg", quality=85)
    apply_transform(other, collected / "unrelated.mp4", TRANSFORMS["letterbox"])

    run(home, "init", "--json")
    case_id = run(home, "case", "open", "--type", "other", "--json")["case_id"]
    added = run(home, "ref", "add", case_id, str(reported), "--json")
    assert added[0]["modality"] == "video" and added[0]["error"] is None

    text = run(home, "hash", str(reported), "--format", "vpdq")  # exactly 1 frame a second
    assert [f.timestamp for f in parse_vpdq(text)] == [float(t) for t in range(24)]

    report = run(home, "scan", str(collected), "--json")
    found = {Path(m["path"]).name: m for m in report["matches"]}
    assert set(found) == {"clip.mp4", "flipped.mp4", "thumb.jpg"}
    assert found["clip.mp4"]["signal"] == "vpdq"
    assert "= reference 0:0" in found["clip.mp4"]["explanation"]
    assert "mirrored" in found["flipped.mp4"]["explanation"]
    assert "frame at 0:18 of the reference video" in found["thumb.jpg"]["explanation"]

    exported = tmp_path / "exported.txt"
    run(home, "ref", "export", "--format", "vpdq", "--out", str(exported))
    stamps = [f.timestamp for f in parse_vpdq(exported.read_text())]
    # References: every frame (5 fps), a frame within a few bits of the last kept one
    # dropped, but one kept at least every half second.
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert 48 <= len(stamps) < 120 and stamps[0] == 0.0 and max(gaps) <= 0.6 + 1e-6
    second = run(home, "case", "open", "--type", "other", "--json")["case_id"]
    imported = run(home, "ref", "import", second, str(exported), "--format", "vpdq", "--json")
    assert imported[0]["modality"] == "video"
    both = run(home, "ref", "export", "--format", "vpdq")
    assert [label for label, _ in split_videos(both)] == [
        f"ref-{added[0]['reference_id']}",
        f"ref-{imported[0]['reference_id']}",
    ]
    rescan = run(home, "scan", str(collected / "clip.mp4"), "--dry-run", "--json")
    assert {m["case_id"] for m in rescan["matches"]} == {case_id, second}

    broken = tmp_path / "broken.txt"
    broken.write_text("0,100,nothex,0.0\n")
    failed = run(home, "ref", "import", second, str(broken), "--format", "vpdq", "--json", expect=1)
    assert "not in vPDQ format" in failed[0]["error"]
