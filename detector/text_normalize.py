"""Text normalization for near-duplicate matching: one pipeline, one function per step.

Reposters dodge text filters by changing how a text is *written* while keeping what it
*says*: Hangul typed as loose jamo (ㅇㅏㄴㄴㅕㅇ), zero-width characters, full-width or
styled letters (ｆｒｅｅ, 𝐟𝐫𝐞𝐞, ⓕⓡⓔⓔ), Cyrillic and Greek look-alikes (frее with
Cyrillic е), digits written as Hangul words or emoji (공일공, 1️⃣), stretched letters
(재밌어요ㅋㅋㅋㅋ, freeeee) and spaces or symbols pushed between letters (f.r.e.e, 무 료).
`normalize` undoes all of these, in this order:

1. `remove_invisible`    zero-width, bidi, soft hyphen, tag, variation-selector and Hangul
                         filler characters go (before step 2, so ㅇ<ZWSP>ㅏ still recomposes).
2. `recompose_jamo`      sequences of compatibility/half-width jamo become syllables
                         (ㅇㅏㄴㄴㅕㅇ -> 안녕). This must come *before* NFKC: NFKC maps
                         compatibility jamo to conjoining jamo and composes only
                         initial+vowel pairs, so ㄱㅏㅇ would become 가ᄋ, not 강.
3. `nfkc`                Unicode NFKC: full-width, circled, parenthesized, styled
                         (mathematical) letters and digits, ligatures, and conjoining jamo
                         (NFD Hangul) all take their plain composed form.
4. `fold_lookalikes`     what NFKC leaves: Cyrillic/Greek/IPA letters that look Latin,
                         accented Latin letters (to their base letter), negative-circled
                         and squared letters, and any digit of any script (➊, ٣) to ASCII.
5. `casefold`            Unicode case folding.
6. `fold_hangul_digits`  Sino-Korean digit syllables (공/영 일 이 삼 사 오 육 칠 팔 구) to
                         0-9, everywhere, so 010 and 공일공 agree. Folding *every* such
                         syllable, not only those that look like numbers, keeps the step
                         context-free: a reference and a repost always fold alike.
7. `remove_separators`   everything that is not a letter or a digit (spaces, punctuation,
                         symbols, emoji, combining marks) goes: "f.r.e.e" -> "free".
8. `squeeze_repeats`     runs of one character shrink to one: ㅋㅋㅋㅋ -> ㅋ, freeee -> fre.
                         (After step 7, so "f r e e e" squeezes too.)

The result is a matching key, not readable text; it is never stored, only hashed.
Every step is a pure str -> str function, tested on Korean and English.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# Bumped whenever a step changes what it produces: signatures of different versions must
# not be compared (the index refuses them).
NORMALIZER_VERSION = 1

# --- 1. invisible characters ------------------------------------------------------------

_INVISIBLE_RANGES = [
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark
    (0x115F, 0x1160),  # Hangul choseong/jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels (invisible)
    (0x180B, 0x180F),  # Mongolian free variation selectors, vowel separator
    (0x200B, 0x200F),  # zero-width space/non-joiner/joiner, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFEFF, 0xFEFF),  # zero-width no-break space (BOM)
    (0xFFA0, 0xFFA0),  # half-width Hangul filler
    (0x1D173, 0x1D17A),  # musical symbol formatting
    (0xE0000, 0xE007F),  # tag characters
    (0xE0100, 0xE01EF),  # variation selectors supplement
]
_INVISIBLE_TABLE = {cp: None for lo, hi in _INVISIBLE_RANGES for cp in range(lo, hi + 1)}


def remove_invisible(text: str) -> str:
    """Drop characters that render as nothing but split words for a filter."""
    return text.translate(_INVISIBLE_TABLE)


# --- 2. Hangul jamo recomposition ------------------------------------------------------

_CHOSEONG = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_JUNGSEONG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_JONGSEONG = "\0ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"
_CHO_INDEX = {ch: i for i, ch in enumerate(_CHOSEONG)}
_JUNG_INDEX = {ch: i for i, ch in enumerate(_JUNGSEONG)}
_JONG_INDEX = {ch: i for i, ch in enumerate(_JONGSEONG) if i}
_COMPOUND_VOWEL = {
    ("ㅗ", "ㅏ"): "ㅘ",
    ("ㅗ", "ㅐ"): "ㅙ",
    ("ㅗ", "ㅣ"): "ㅚ",
    ("ㅜ", "ㅓ"): "ㅝ",
    ("ㅜ", "ㅔ"): "ㅞ",
    ("ㅜ", "ㅣ"): "ㅟ",
    ("ㅡ", "ㅣ"): "ㅢ",
}
_COMPOUND_FINAL = {
    ("ㄱ", "ㅅ"): "ㄳ",
    ("ㄴ", "ㅈ"): "ㄵ",
    ("ㄴ", "ㅎ"): "ㄶ",
    ("ㄹ", "ㄱ"): "ㄺ",
    ("ㄹ", "ㅁ"): "ㄻ",
    ("ㄹ", "ㅂ"): "ㄼ",
    ("ㄹ", "ㅅ"): "ㄽ",
    ("ㄹ", "ㅌ"): "ㄾ",
    ("ㄹ", "ㅍ"): "ㄿ",
    ("ㄹ", "ㅎ"): "ㅀ",
    ("ㅂ", "ㅅ"): "ㅄ",
}
_SYLLABLE_BASE = 0xAC00


def _halfwidth_to_compat_jamo() -> dict[int, str]:
    """Half-width jamo (U+FFA1..) to compatibility jamo, matched through their NFKC form."""
    by_conjoining = {
        unicodedata.normalize("NFKC", chr(cp)): chr(cp) for cp in range(0x3131, 0x3164)
    }
    table = {}
    for cp in range(0xFFA1, 0xFFDD):
        if unicodedata.category(chr(cp)) == "Lo":
            compat = by_conjoining.get(unicodedata.normalize("NFKC", chr(cp)))
            if compat:
                table[cp] = compat
    return table


_HALFWIDTH_JAMO = _halfwidth_to_compat_jamo()
_HAS_LOOSE_JAMO = re.compile("[\u3131-\u3163\uffa1-\uffdc]")
_REPEATED_VOWEL_JAMO = re.compile("([\u314f-\u3163])\\1+")


def recompose_jamo(text: str) -> str:
    """Join runs of loose compatibility jamo into syllables: ㄱㅏㅇ -> 강, ㅇㅏㄴㄴㅕㅇ -> 안녕.

    A syllable starts at an initial consonant followed by a vowel; a following consonant is
    its final unless a vowel follows it (then it starts the next syllable). Compound vowels
    (ㅗㅏ -> ㅘ) and finals (ㄹㄱ -> ㄺ) typed as two jamo are joined. Jamo that cannot form
    a syllable (ㅋㅋ, a lone ㅏ) are left as they are.
    """
    if not _HAS_LOOSE_JAMO.search(text):
        return text
    # A doubled vowel jamo never spells anything (ㅇㅏㅏㅏ is a stretched 아), while a
    # doubled consonant can be a final and the next initial (ㅇㅏㄴㄴㅕㅇ), so only vowel
    # runs collapse here; step 8 squeezes the rest.
    chars = list(_REPEATED_VOWEL_JAMO.sub(r"\1", text.translate(_HALFWIDTH_JAMO)))
    n = len(chars)

    def at(i: int) -> str:
        return chars[i] if i < n else ""

    out: list[str] = []
    i = 0
    while i < n:
        initial = chars[i]
        if initial not in _CHO_INDEX or at(i + 1) not in _JUNG_INDEX:
            out.append(initial)
            i += 1
            continue
        vowel = chars[i + 1]
        j = i + 2
        compound = _COMPOUND_VOWEL.get((vowel, at(j)))
        if compound:
            vowel, j = compound, j + 1
        final = ""
        if at(j) in _JONG_INDEX and at(j + 1) not in _JUNG_INDEX:
            final, j = chars[j], j + 1
            compound = _COMPOUND_FINAL.get((final, at(j)))
            if compound and at(j + 1) not in _JUNG_INDEX:
                final, j = compound, j + 1
        code = (_CHO_INDEX[initial] * 21 + _JUNG_INDEX[vowel]) * 28
        out.append(chr(_SYLLABLE_BASE + code + (_JONG_INDEX[final] if final else 0)))
        i = j
    return "".join(out)


# --- 3. NFKC ---------------------------------------------------------------------------


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


# --- 4. look-alike folding -------------------------------------------------------------

# Letters from other scripts that render like a Latin letter. Case-sensitive on purpose
# (runs before case folding): Greek capital Η looks like H, small η like n.
_LOOKALIKES = {
    # Cyrillic capitals
    "А": "a", "В": "b", "С": "c", "Е": "e", "Н": "h", "І": "i", "Ј": "j", "К": "k",
    "М": "m", "О": "o", "Р": "p", "Ѕ": "s", "Т": "t", "Х": "x", "У": "y", "Ү": "y",
    "Ԛ": "q", "Ԝ": "w", "Ӏ": "l", "Ғ": "f",
    # Cyrillic small
    "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "e", "һ": "h", "і": "i",
    "ї": "i", "ј": "j", "к": "k", "ӏ": "l", "м": "m", "н": "h", "о": "o", "р": "p",
    "ԛ": "q", "ѕ": "s", "т": "t", "у": "y", "ү": "y", "х": "x", "ԝ": "w", "ь": "b",
    # Greek capitals
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m",
    "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
    # Greek small
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v",
    "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
    # Latin/IPA letters that pass for plain ones
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ɩ": "i", "ɪ": "i", "ʟ": "l", "ɴ": "n",
    "ʀ": "r", "ʏ": "y", "ᴀ": "a", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ᴊ": "j", "ᴋ": "k",
    "ᴍ": "m", "ᴏ": "o", "ᴘ": "p", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ᴢ": "z",
    "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ß": "ss", "æ": "ae", "œ": "oe",
}  # fmt: skip

# Letters inside symbols that NFKC leaves alone (its "LETTER X" is in the name).
_LETTER_SYMBOL_RANGES = [(0x1F100, 0x1F1FF)]  # negative circled/squared, regional indicators
_LETTER_IN_NAME = re.compile(r"LETTER ([A-Z])$")


def _lookalike_table() -> dict[int, str]:
    table: dict[int, str] = {ord(k): v for k, v in _LOOKALIKES.items()}
    # Accented Latin letters fold to their base letter (é -> e, ñ -> n, ǅ handled by NFKC).
    for cp in list(range(0x00C0, 0x0250)) + list(range(0x1E00, 0x1F00)):
        ch = chr(cp)
        base = unicodedata.normalize("NFD", ch)[:1]
        if base.isascii() and base.isalpha() and base != ch:
            table.setdefault(cp, base)
    # Any digit of any script, and digit symbols NFKC does not decompose (➊, ⓵).
    for cp in range(0x80, 0x20000):
        ch = chr(cp)
        digit = unicodedata.digit(ch, None)
        if digit is not None and cp not in table:
            table[cp] = str(digit)
    for lo, hi in _LETTER_SYMBOL_RANGES:
        for cp in range(lo, hi + 1):
            match = _LETTER_IN_NAME.search(unicodedata.name(chr(cp), ""))
            if match:
                table[cp] = match.group(1).lower()
    table[0x1F51F] = "10"  # keycap ten
    return table


_LOOKALIKE_TABLE = _lookalike_table()


def fold_lookalikes(text: str) -> str:
    """Map look-alike letters and digits of other scripts to plain Latin letters and 0-9."""
    return text.translate(_LOOKALIKE_TABLE)


# --- 5. case folding -------------------------------------------------------------------


def casefold(text: str) -> str:
    return text.casefold()


# --- 6. Hangul digit words -------------------------------------------------------------

_HANGUL_DIGITS = str.maketrans(
    {"공": "0", "영": "0", "일": "1", "이": "2", "삼": "3", "사": "4", "오": "5",
     "육": "6", "륙": "6", "칠": "7", "팔": "8", "구": "9"}
)  # fmt: skip


def fold_hangul_digits(text: str) -> str:
    """공일공 -> 010: Sino-Korean digit syllables read as the digits they name."""
    return text.translate(_HANGUL_DIGITS)


# --- 7. separators ---------------------------------------------------------------------

# Python's \w is "alphanumeric or underscore" over all of Unicode, so [\W_] is exactly
# "not a letter or digit": spaces, punctuation, symbols, emoji and combining marks.
_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_]+")


def remove_separators(text: str) -> str:
    return _NOT_LETTER_OR_DIGIT.sub("", text)


# --- 8. repeats ------------------------------------------------------------------------

_REPEATED = re.compile(r"(.)\1+", re.DOTALL)


def squeeze_repeats(text: str) -> str:
    return _REPEATED.sub(r"\1", text)


# --- the pipeline ----------------------------------------------------------------------

PIPELINE: tuple[Callable[[str], str], ...] = (
    remove_invisible,
    recompose_jamo,
    nfkc,
    fold_lookalikes,
    casefold,
    fold_hangul_digits,
    remove_separators,
    squeeze_repeats,
)


def normalize(text: str) -> str:
    """The matching key of a text: every step of `PIPELINE`, in order."""
    for step in PIPELINE:
        text = step(text)
    return text
