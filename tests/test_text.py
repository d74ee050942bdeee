"""Text decoding, refusals, shingles, MinHash (held to datasketch) and the text hasher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ansim.detector.errors import MediaError
from ansim.detector.hashing import HashOptions
from ansim.detector.sniff import sniff_bytes
from ansim.detector.text import (
    MINHASH_SEED,
    NUM_PERM,
    TextOptions,
    TextSignature,
    TooShort,
    decode_text,
    minhash_values,
    shingle_hashes,
    text_signals,
    window_minhashes,
)
from ansim.detector.text_normalize import normalize
from ansim.signal_types.hashing import hash_file
from datasketch import MinHash

POST = "오늘 저녁 7시에 강남역 2번 출구에서 만나요. 연락처는 010-1234-5678 입니다."


def test_decodes_utf8_cp949_euckr_utf16() -> None:
    assert decode_text(POST.encode("utf-8")).encoding == "utf-8"
    for legacy in ("cp949", "euc-kr"):
        decoded = decode_text(POST.encode(legacy))
        assert decoded.text == POST and decoded.encoding == "cp949"
    assert decode_text(POST.encode("utf-16")).text == POST
    assert decode_text(b"\xef\xbb\xbf" + POST.encode()).text == POST


def test_decodes_cp949_only_characters() -> None:
    # 똠 and 햏 are outside EUC-KR's 2,350 syllables but inside CP949.
    text = "똠방각하 햏햏 이야기를 다시 올립니다"
    assert decode_text(text.encode("cp949")).text == text


def test_invalid_utf8_in_long_text_is_kept_with_a_warning() -> None:
    data = ("English text about a reposted advert. " * 200).encode() + b"\xff\xfe\xfd"
    decoded = decode_text(data)
    assert decoded.warnings or decoded.encoding != "utf-8"
    assert "reposted advert" in decoded.text


def test_binary_posing_as_text_is_refused() -> None:
    noise = np.random.default_rng(1).integers(1, 256, 4000, dtype=np.uint8).tobytes()
    with pytest.raises(MediaError, match="not text"):
        decode_text(noise)
    with pytest.raises(MediaError, match="not text"):
        decode_text(b"\x01\x02\x03\x04hello\x05\x06\x07\x08" * 50)


@pytest.mark.parametrize("text", ["", "   \n\t  ", "\u200b\u200b", "ㅋㅋㅋㅋ", "ok!"])
def test_empty_and_short_texts_are_refused(text: str) -> None:
    with pytest.raises(TooShort, match="too short"):
        text_signals(text)


def test_minimum_length_is_configurable() -> None:
    with pytest.raises(TooShort):
        text_signals("짧은 글입니다")
    assert text_signals("짧은 글입니다", TextOptions(min_chars=4)).normalized_chars == 6


def test_megabyte_line_is_handled() -> None:
    line = ("광고 문의 환영 free ads " * 60_000)[:1_000_000]
    signals = text_signals(line)
    assert len(signals.signature.shingles) < 100  # a repeated phrase has few distinct shingles
    assert signals.signature.windows.shape[1] == NUM_PERM


def test_minhash_equals_datasketch_update_batch() -> None:
    hashes = np.unique(shingle_hashes(normalize(POST)))
    reference = MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED, hashfunc=int)
    reference.update_batch(hashes)
    assert np.array_equal(minhash_values(hashes), reference.hashvalues)


def test_shingles_are_order_sensitive_and_stable() -> None:
    assert len(shingle_hashes("abcd")) == 2
    assert shingle_hashes("abc")[0] != shingle_hashes("cba")[0]
    assert np.array_equal(shingle_hashes("한국어"), shingle_hashes("한국어"))
    assert len(shingle_hashes("ab")) == 1


def test_windows_equal_minhash_of_their_slices() -> None:
    ordered = shingle_hashes(normalize(POST * 3))
    windows = window_minhashes(ordered)
    assert len(windows) > 0
    first = minhash_values(np.unique(ordered[:16]))
    assert any(np.array_equal(first, w) for w in windows)


def test_signature_round_trip_and_summary() -> None:
    signals = text_signals(POST)
    blob = signals.signature.to_bytes()
    back = TextSignature.from_bytes(blob)
    assert np.array_equal(back.minhash, signals.signature.minhash)
    assert np.array_equal(back.shingles, signals.signature.shingles)
    summary = signals.signature.summary()
    assert summary["num_perm"] == NUM_PERM and summary["shingles"] == len(back.shingles)
    assert POST not in json.dumps(summary, ensure_ascii=False)
    with pytest.raises(ValueError):
        TextSignature.from_bytes(blob[:-3])


def test_same_text_under_evasion_has_same_normalized_hash() -> None:
    evaded = (
        "오늘 저녁 칠시에 강 남 역 이번 출구에서 만나요. 연락처는 공일공-일이삼사-오육칠팔 입니다"
    )
    assert text_signals(evaded).normalized_sha256 == text_signals(POST).normalized_sha256
    plain = text_signals("Free cash now, call 010 1234 5678 today")
    styled = text_signals("ｆｒｅｅ ＣＡＳＨ now!! call 0️⃣1️⃣0️⃣ 1234 5678 today")
    assert plain.normalized_sha256 == styled.normalized_sha256


def test_text_files_are_sniffed_and_hashed(tmp_path: Path) -> None:
    for name, data in {
        "post.txt": POST.encode(),
        "legacy.txt": POST.encode("cp949"),
        "utf16.txt": POST.encode("utf-16"),
    }.items():
        path = tmp_path / name
        path.write_bytes(data)
        signals = hash_file(path)
        assert signals.modality == "text"
        out = signals.summary()
        assert out["text_sha256"] == text_signals(POST).normalized_sha256
        assert out["text_minhash"]["num_perm"] == NUM_PERM
    assert sniff_bytes(POST.encode("utf-16")).modality == "text"


def test_text_file_refusals(tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("안녕")
    with pytest.raises(TooShort):
        hash_file(short)
    big = tmp_path / "big.txt"
    big.write_text("a" * 5000)
    with pytest.raises(MediaError, match="over the text limit"):
        hash_file(big, HashOptions(text=TextOptions(max_bytes=1000)))
