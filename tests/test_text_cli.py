"""Text through the real `ansim` command: hash, ref add (file, --lines, --text), scan,
withdraw, and the benchmark on a small slice."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.test_cli_end_to_end import ANSIM, run

AD = "급전 대출 상담 24시간 가능합니다. 신용불량 환영, 연락처 010-9876-5432 카톡 문의 주세요"
DOXX = "Her home address is 12 Example Street, she works nights at the corner cafe near the park"
THREAT = "You will regret reporting me. I know where you live and I will post everything again"


def test_text_ref_add_scan_withdraw(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run(home, "init", "--json")
    case_id = run(home, "case", "open", "--type", "stalking", "--json")["case_id"]

    ad_file = tmp_path / "ad.txt"
    ad_file.write_bytes(AD.encode("cp949"))
    lines_file = tmp_path / "posts.txt"
    lines_file.write_text(f"{DOXX}\n\n짧음\n")
    added = run(home, "ref", "add", case_id, str(ad_file), "--json")
    assert added[0]["modality"] == "text" and added[0]["error"] is None
    by_line = run(home, "ref", "add", case_id, str(lines_file), "--lines", "--json", expect=1)
    assert [r["error"] is None for r in by_line] == [True, False]  # 짧음 is too short
    assert "too short" in by_line[1]["error"]
    threat = run(home, "ref", "add", case_id, "--text", THREAT, "--json")[0]
    run(home, "ref", "add", case_id, expect=2)  # neither files nor --text

    hashed = run(home, "hash", str(ad_file), "--json")[0]
    assert {"text_minhash", "text_sha256"} <= set(hashed["signals"])
    assert AD[:10] not in json.dumps(hashed, ensure_ascii=False)

    collected = tmp_path / "collected"
    collected.mkdir()
    (collected / "ad_repost.txt").write_text(
        "급 전 대 출 상 담 ２４시간 가능합니다!! 신용불량 환영~ 연락처 공일공-9876-5432 카톡 문의"
    )
    (collected / "forum_page.txt").write_text(
        "\n".join([f"unrelated forum reply number {i} about football scores" for i in range(40)])
        + "\n"
        + DOXX.replace("e", "е")  # Cyrillic е
        + "\n"
        + "\n".join([f"another unrelated reply {i} about the weather today" for i in range(40)])
    )
    (collected / "threat_half.txt").write_text(THREAT[: len(THREAT) // 2 + 6])
    (collected / "unrelated.txt").write_text(
        "오늘 점심은 김치찌개를 먹었는데 정말 맛있었어요 추천합니다"
    )
    (collected / "binary.txt").write_bytes(bytes(range(1, 256)) * 40)
    report = run(home, "scan", str(collected), "--json", expect=1)  # binary.txt fails
    assert report["errors"] == 1 and "binary.txt" in report["failures"][0]["path"]
    found = {Path(m["path"]).name: m for m in report["matches"]}
    assert set(found) == {"ad_repost.txt", "forum_page.txt", "threat_half.txt"}
    assert found["ad_repost.txt"]["reference_id"] == added[0]["reference_id"]
    assert found["forum_page.txt"]["signal"] == "text_contains_reference"
    assert found["threat_half.txt"]["reference_id"] == threat["reference_id"]

    run(home, "ref", "withdraw", str(added[0]["reference_id"]), "--json")
    again = run(home, "scan", str(collected / "ad_repost.txt"), "--dry-run", "--json")
    assert again["matches"] == []


def test_bench_text_runs_on_a_small_slice(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "bench"
    args = ["bench", "text", "--data", str(shared_data / "text"), "--out", str(out)]
    args += ["--references", "40", "--max-distractors", "400", "--json"]
    done = subprocess.run([ANSIM, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr  # 1: a target missed on this tiny slice
    result = json.loads(done.stdout)
    assert result["references"] == 40 and result["distractors"] == 400
    assert {e["name"] for e in result["evasions"]} >= {"jamo_split", "embed_in_page", "typos"}
    assert (out / "text_bench.md").exists()
