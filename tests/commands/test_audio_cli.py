"""Audio through the real `ansim` command: a reported video's soundtrack finds an
audio-only repost, `hash --json` summarises the landmarks, withdrawal empties the index."""

from __future__ import annotations

from pathlib import Path

from ansim.benchmarks import audio_transforms as edits

from tests.audio_helpers import INDEXED, load_mono, recording, write_video
from tests.commands.test_cli_end_to_end import run


def test_video_reference_finds_audio_only_repost(tmp_path: Path, shared_data: Path) -> None:
    home = tmp_path / "home"
    samples, rate = load_mono(recording(shared_data, INDEXED[2]))  # 46 s of strings
    video = write_video(tmp_path / "reported.mp4", samples[: 30 * rate], rate, 30.0)
    collected = tmp_path / "collected"
    collected.mkdir()
    clip = samples[12 * rate : 20 * rate]
    sped, sped_rate = edits.speed(1.04)(clip, rate, None)
    (collected / "repost.mp3").write_bytes(edits.encode_mp3(sped, sped_rate, 64_000))
    other, other_rate = load_mono(recording(shared_data, "glacier-bay-humpback.hq.ogg"))
    (collected / "unrelated.wav").write_bytes(edits.wav_bytes(other[: 10 * other_rate], other_rate))

    run(home, "init", "--json")
    case_id = run(home, "case", "open", "--type", "other", "--pseudonym", "Red", "--json")[
        "case_id"
    ]
    added = run(home, "ref", "add", case_id, str(video), "--json")
    assert added[0]["error"] is None and added[0]["modality"] == "video"

    hashed = run(home, "hash", str(collected / "repost.mp3"), "--json")
    audio = hashed[0]["signals"]["audio"]
    assert audio["duration_s"] > 7 and audio["landmarks"] > 500

    report = run(home, "scan", str(collected), "--json")
    assert report["scanned"] == 2 and report["errors"] == 0
    assert [Path(m["path"]).name for m in report["matches"]] == ["repost.mp3"]
    match = report["matches"][0]
    assert match["signal"] == "audio" and match["reference_id"] == added[0]["reference_id"]
    assert "0:12." in match["explanation"] or "0:13." in match["explanation"]

    run(home, "ref", "withdraw", str(added[0]["reference_id"]), "--json")
    assert run(home, "scan", str(collected), "--json")["matches"] == []
