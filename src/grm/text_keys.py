"""One normalisation for every comparison of texts (item ids, train/test overlap) and one test for "blank".

Two strings that render the same must compare the same: ``comparison_key`` applies Unicode NFKC (full-width and
compatibility forms fold to their plain letters), drops invisible characters (Unicode categories ``Cf`` and ``Cc``:
zero-width spaces and joiners, bidi controls, the BOM, soft hyphens, control characters) and collapses every run of
whitespace to one space, trimmed, and folds the Cyrillic and Greek letters that render exactly as a Latin letter
(``CONFUSABLES``: the single-letter Cyrillic/Greek -> Latin entries of Unicode's confusables.txt, UTS #39) to that
letter, so "wоrld/1" with a Cyrillic "о" is the id "world/1". Folding, rather than refusing ids that mix scripts,
keeps legitimate mixed ids ("ru/вопрос-1") valid: two ids then compare equal only when they look the same. Other
confusables (digits, symbols, other scripts) are not folded.
"""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
# Cyrillic and Greek letters whose glyph is a Latin letter's (confusables.txt, single letter to single letter)
_LOOKALIKES = {
    "a": "аα", "c": "сϲ", "d": "ԁ", "e": "е", "h": "һ", "i": "іι", "j": "ј", "l": "ӏ", "o": "оο", "p": "рρ",
    "q": "ԛ", "s": "ѕ", "v": "ν", "w": "ԝ", "x": "хχ", "y": "уγ",
    "A": "АΑ", "B": "ВΒ", "C": "СϹ", "E": "ЕΕ", "H": "НΗ", "I": "ІΙ", "J": "Ј", "K": "КΚ", "M": "МΜ", "N": "Ν",
    "O": "ОΟ", "P": "РΡ", "S": "Ѕ", "T": "ТΤ", "X": "ХΧ", "Y": "ҮΥ", "Z": "Ζ",
}  # fmt: skip
CONFUSABLES = str.maketrans({ch: latin for latin, chars in _LOOKALIKES.items() for ch in chars})


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cf", "Cc") and not ch.isspace()


def visible(text: str) -> str:
    """``text`` without its invisible characters (format and control characters other than whitespace).

    Example:
        >>> visible("a\\u200bb\\ufeff")
        'ab'
    """
    if text.isascii():
        return "".join(ch for ch in text if ch.isprintable() or ch.isspace())
    return "".join(ch for ch in text if not _invisible(ch))


def is_blank(text: str) -> bool:
    """True when ``text`` shows nothing: only whitespace and invisible characters (U+200B, a BOM, bidi marks).

    Example:
        >>> (is_blank(" \\u200b\\ufeff "), is_blank(" x "))
        (True, False)
    """
    return not visible(text).strip()


def comparison_key(text: str) -> str:
    """The form two texts are compared in: NFKC, Cyrillic/Greek look-alikes of Latin letters folded, invisible
    characters dropped, whitespace collapsed and trimmed.

    Example:
        >>> comparison_key("ｗ/1\\u200b ") == comparison_key("w/1") == comparison_key("\\u051d/1")
        True
    """
    folded = unicodedata.normalize("NFKC", text)
    if not folded.isascii():
        folded = folded.translate(CONFUSABLES)
    return _SPACE.sub(" ", visible(folded)).strip()
