"""Each normalization step on Korean and English, then the whole pipeline."""

from __future__ import annotations

import pytest
from ansim.detector import text_normalize as tn


def test_remove_invisible_korean_and_english() -> None:
    assert tn.remove_invisible("재\u200b밌\u200d어\ufeff요") == "재밌어요"
    assert tn.remove_invisible("fr\u00adee\u2060 ca\u200csh") == "free cash"
    assert tn.remove_invisible("ㅋ\u3164ㅋ\U000e0041") == "ㅋㅋ"  # Hangul filler, tag char


def test_recompose_jamo_builds_syllables_with_finals() -> None:
    assert tn.recompose_jamo("ㅇㅏㄴㄴㅕㅇㅎㅏㅅㅔㅇㅛ") == "안녕하세요"
    assert tn.recompose_jamo("ㄱㅏㅇ") == "강"  # NFKC alone would give 가ᄋ
    assert tn.nfkc("ㄱㅏㅇ") != "강"


def test_recompose_jamo_compound_vowels_finals_and_leftovers() -> None:
    assert tn.recompose_jamo("ㅇㅗㅏㅇ") == "왕"
    assert tn.recompose_jamo("ㄷㅏㄹㄱ") == "닭"
    assert tn.recompose_jamo("ㅇㅣㄹㄱㅓ") == "일거"  # ㄱ starts the next syllable
    assert tn.recompose_jamo("ㅋㅋㅋ 좋아") == "ㅋㅋㅋ 좋아"
    assert tn.recompose_jamo("ㅇㅏㅏㅏㄴ") == "안"  # stretched vowel
    assert tn.recompose_jamo("free ㅎㅏㄴ") == "free 한"
    assert tn.recompose_jamo("\uffb7\uffc2") == "아"  # half-width jamo


def test_nfkc_full_width_circled_styled() -> None:
    assert tn.nfkc("ｆｒｅｅ ＳＥＸ") == "free SEX"
    assert tn.nfkc("𝐟𝐫𝐞𝐞 ⓒⓐⓢⓗ") == "free cash"
    assert tn.nfkc("㉠㉮①") == "ᄀ가1"
    assert tn.nfkc("한") == "한"  # conjoining (NFD) jamo


def test_fold_lookalikes_cyrillic_greek_accents_digits() -> None:
    assert tn.fold_lookalikes("frее саsh") == "free cash"  # Cyrillic е, с, а
    assert tn.fold_lookalikes("ΗΕLLΟ") == "heLLo"  # Greek capitals; case folds later
    assert tn.fold_lookalikes("Café ñ") == "Cafe n"
    assert tn.fold_lookalikes("➊➋ ٣ 🅰🅱") == "12 3 ab"
    assert tn.fold_lookalikes("한국어 그대로") == "한국어 그대로"


def test_casefold() -> None:
    assert tn.casefold("FREE Straße") == "free strasse"
    assert tn.casefold("한국어 OK") == "한국어 ok"


def test_fold_hangul_digits() -> None:
    assert tn.fold_hangul_digits("공일공-일이삼사") == "010-1234"
    assert tn.fold_hangul_digits("call 010") == "call 010"


def test_remove_separators() -> None:
    assert tn.remove_separators("f.r.e.e c-a_s*h!") == "freecash"
    assert tn.remove_separators("무 료 · 상 담 💋 ") == "무료상담"
    assert tn.remove_separators("1\ufe0f\u20e3") == "1"


def test_squeeze_repeats() -> None:
    assert tn.squeeze_repeats("재밌어요ㅋㅋㅋㅋㅋ") == "재밌어요ㅋ"
    assert tn.squeeze_repeats("freeeee") == "fre"


@pytest.mark.parametrize(
    ("evaded", "original"),
    [
        ("ㅇㅏㄴㄴㅕㅇㅎㅏㅅㅔㅇㅛ", "안녕하세요"),
        ("안\u200b녕\u200c하세요!!", "안녕하세요"),
        ("안 녕 하 세 요", "안녕하세요"),
        ("연락처 공일공 일이삼사 오육칠팔", "연락처 010-1234-5678"),
        ("연락처 0️⃣1️⃣0️⃣-1234-5678", "연락처 010-1234-5678"),
        ("ｆｒｅｅ 𝐜𝐚𝐬𝐡 ⓝⓞⓦ", "free cash now"),
        ("Frее саsh nοw", "free cash now"),
        ("f.r.e.e   c-a-s-h   n o w", "free cash now"),
        ("freeeee cassssh nooow", "free cash now"),
        ("FREE CASH NOW", "free cash now"),
    ],
)
def test_pipeline_undoes_evasions(evaded: str, original: str) -> None:
    assert tn.normalize(evaded) == tn.normalize(original)


def test_pipeline_keeps_different_texts_different() -> None:
    assert tn.normalize("안녕하세요") != tn.normalize("안녕히가세요")
    assert tn.normalize("free cash") != tn.normalize("free cars")
