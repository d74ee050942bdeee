"""Simulated reposts: the ways people rewrite a text so filters miss it.

Each evasion is `(text, rng) -> text`. Character-level evasions change how the text is
written; structural ones (reorder, truncate, embed) change what part of it is where.
An evasion that cannot change a given text (digits_as_words on a text without digits)
returns it unchanged, and the benchmark skips that pair rather than count a free hit.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

Evasion = Callable[[str, random.Random], str]

_HANGUL_FIRST, _HANGUL_LAST = 0xAC00, 0xD7A3
_CHOSEONG = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_JUNGSEONG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_JONGSEONG = ["", *"ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"]
_SPLIT_VOWEL = {"ㅘ": "ㅗㅏ", "ㅙ": "ㅗㅐ", "ㅚ": "ㅗㅣ", "ㅝ": "ㅜㅓ", "ㅞ": "ㅜㅔ", "ㅟ": "ㅜㅣ",
                "ㅢ": "ㅡㅣ"}  # fmt: skip


def _is_hangul(ch: str) -> bool:
    return _HANGUL_FIRST <= ord(ch) <= _HANGUL_LAST


def jamo_split(text: str, rng: random.Random) -> str:
    """안녕 -> ㅇㅏㄴㄴㅕㅇ (compatibility jamo; compound vowels split half of the time)."""
    out = []
    for ch in text:
        if not _is_hangul(ch):
            out.append(ch)
            continue
        code = ord(ch) - _HANGUL_FIRST
        vowel = _JUNGSEONG[(code // 28) % 21]
        if vowel in _SPLIT_VOWEL and rng.random() < 0.5:
            vowel = _SPLIT_VOWEL[vowel]
        out.append(_CHOSEONG[code // 588] + vowel + _JONGSEONG[code % 28])
    return "".join(out)


_INVISIBLES = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]


def zero_width(text: str, rng: random.Random) -> str:
    """Invisible characters between a third of the characters."""
    out = []
    for ch in text:
        out.append(ch)
        if rng.random() < 0.33:
            out.append(rng.choice(_INVISIBLES))
    return "".join(out)


def full_width(text: str, rng: random.Random) -> str:
    """ASCII to full-width forms (ｆｒｅｅ), spaces to ideographic spaces."""
    return "".join(
        chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else "\u3000" if ch == " " else ch for ch in text
    )


_CYRILLIC_GREEK = {
    "a": "аα", "c": "сϲ", "e": "еε", "i": "іι", "j": "ј", "o": "оο", "p": "рρ", "s": "ѕ",
    "x": "хχ", "y": "уγ", "h": "һ", "d": "ԁ", "k": "κ", "v": "ν", "A": "АΑ", "B": "ВΒ",
    "C": "С", "E": "ЕΕ", "H": "НΗ", "I": "ІΙ", "K": "КΚ", "M": "МΜ", "N": "Ν", "O": "ОΟ",
    "P": "РΡ", "T": "ТΤ", "X": "ХΧ", "Y": "ҮΥ", "Z": "Ζ",
}  # fmt: skip


def homoglyphs(text: str, rng: random.Random) -> str:
    """Latin letters to Cyrillic or Greek look-alikes, for 60% of those that have one."""
    return "".join(
        rng.choice(_CYRILLIC_GREEK[ch]) if ch in _CYRILLIC_GREEK and rng.random() < 0.6 else ch
        for ch in text
    )


# Mathematical alphanumeric blocks: (capital A, small a) code points per style.
_STYLES = [(0x1D400, 0x1D41A), (0x1D434, 0x1D44E), (0x1D5D4, 0x1D5EE), (0x1D670, 0x1D68A)]
_MATH_HOLES = {0x1D455: "\u210e"}  # italic small h is in Letterlike Symbols


def styled_letters(text: str, rng: random.Random) -> str:
    """Latin letters in a mathematical style (𝐟𝐫𝐞𝐞) or circled (ⓕⓡⓔⓔ), one per text."""
    circled = rng.random() < 0.25
    capital, small = rng.choice(_STYLES)
    out = []
    for ch in text:
        if "a" <= ch <= "z":
            cp = (0x24D0 + ord(ch) - 97) if circled else small + ord(ch) - 97
        elif "A" <= ch <= "Z":
            cp = (0x24B6 + ord(ch) - 65) if circled else capital + ord(ch) - 65
        else:
            out.append(ch)
            continue
        out.append(_MATH_HOLES.get(cp, chr(cp)))
    return "".join(out)


_HANGUL_DIGIT_WORDS = ["공", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"]


def digits_as_words(text: str, rng: random.Random) -> str:
    """Digits as Sino-Korean syllables (공일공) or keycap/circled emoji digits (1️⃣, ➊)."""
    style = rng.choice(["hangul", "keycap", "dingbat"])
    out = []
    for ch in text:
        if not ("0" <= ch <= "9"):
            out.append(ch)
        elif style == "hangul":
            out.append(_HANGUL_DIGIT_WORDS[int(ch)])
        elif style == "keycap":
            out.append(ch + "\ufe0f\u20e3")
        else:
            out.append(chr(0x2789 + int(ch)) if ch != "0" else "⓿")
    return "".join(out)


def repeated_chars(text: str, rng: random.Random) -> str:
    """A fifth of the letters stretched to 2-5 copies (freeee, ㅋㅋㅋㅋ, 좋아아아)."""
    return "".join(
        ch * rng.randint(2, 5) if ch.isalnum() and rng.random() < 0.2 else ch for ch in text
    )


_SPLITTERS = [" ", ".", "-", "_", "*", "/", "·", "|", "~"]


def split_words(text: str, rng: random.Random) -> str:
    """Spaces or symbols between characters (f.r.e.e, 무 료), existing spaces dropped."""
    splitter = rng.choice(_SPLITTERS)
    chars = [ch for ch in text if not ch.isspace()]
    return "".join(ch + (splitter if rng.random() < 0.6 else "") for ch in chars).rstrip(splitter)


_LATIN = "abcdefghijklmnopqrstuvwxyz"


def _random_like(ch: str, rng: random.Random) -> str:
    if _is_hangul(ch):
        return chr(rng.randint(_HANGUL_FIRST, _HANGUL_LAST))
    return rng.choice(_LATIN)


def typos(text: str, rng: random.Random) -> str:
    """One edit (substitute, delete, insert, swap) per 25 characters, at least one."""
    chars = list(text)
    letters = [i for i, ch in enumerate(chars) if ch.isalnum()]
    if not letters:
        return text
    for _ in range(max(1, len(text) // 25)):
        i = rng.randrange(len(chars))
        kind = rng.choice(["substitute", "delete", "insert", "swap"])
        if kind == "substitute":
            chars[i] = _random_like(chars[i], rng)
        elif kind == "delete" and len(chars) > 1:
            del chars[i]
        elif kind == "insert":
            chars.insert(i, _random_like(chars[i], rng))
        elif i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def combined_char_level(text: str, rng: random.Random) -> str:
    """Several at once, as reposters do: stretched letters, then loose jamo, look-alikes
    and zero-width characters."""
    return zero_width(homoglyphs(jamo_split(repeated_chars(text, rng), rng), rng), rng)


_SENTENCE_END = re.compile(r"(?<=[.!?。…~])\s+|\n+")


def reorder(text: str, rng: random.Random) -> str:
    """Sentences in another order; a single sentence is cut at a word boundary near its
    middle and its halves swapped."""
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s]
    if len(sentences) >= 2:
        order = sentences[:]
        while order == sentences:
            rng.shuffle(order)
        return " ".join(order)
    words = text.split()
    if len(words) < 2:
        return text
    cut = max(1, min(len(words) - 1, len(words) // 2 + rng.randint(-1, 1)))
    return " ".join(words[cut:] + words[:cut])


def truncate_half(text: str, rng: random.Random) -> str:
    """The first or the second half (cut at the word boundary nearest the middle)."""
    middle = len(text) // 2
    spaces = [m.start() for m in re.finditer(r"\s", text)]
    cut = min(spaces, key=lambda s: abs(s - middle)) if spaces else middle
    if abs(cut - middle) > len(text) // 6:
        cut = middle
    return text[:cut].strip() if rng.random() < 0.5 else text[cut:].strip()


def embedder(fillers: list[str], page_texts: tuple[int, int] = (20, 40)) -> Evasion:
    """An evasion that pastes the text among unrelated texts, as on a forum page."""

    def embed(text: str, rng: random.Random) -> str:
        page = rng.sample(fillers, rng.randint(*page_texts))
        page.insert(rng.randint(0, len(page)), text)
        return "\n".join(page)

    return embed


CHARACTER_LEVEL: dict[str, Evasion] = {
    "jamo_split": jamo_split,
    "zero_width": zero_width,
    "full_width": full_width,
    "homoglyphs": homoglyphs,
    "styled_letters": styled_letters,
    "digits_as_words": digits_as_words,
    "repeated_chars": repeated_chars,
    "split_words": split_words,
    "combined": combined_char_level,
}
EDIT_LEVEL: dict[str, Evasion] = {"typos": typos}
STRUCTURAL: dict[str, Evasion] = {"reorder": reorder, "truncate_half": truncate_half}
