"""One normalisation for every comparison of texts (item ids, train/test overlap) and one test for "blank".

Two strings that render the same must compare the same: ``comparison_key`` applies Unicode NFKC (full-width and
compatibility forms fold to their plain letters), drops invisible characters (Unicode categories ``Cf`` and ``Cc``:
zero-width spaces and joiners, bidi controls, the BOM, soft hyphens, control characters) and collapses every run of
whitespace to one space, trimmed. Look-alike letters from other scripts (Cyrillic "а" for Latin "a") are not folded:
that needs the Unicode confusables table, which this module does not ship.
"""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")


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
    """The form two texts are compared in: NFKC, invisible characters dropped, whitespace collapsed and trimmed.

    Example:
        >>> comparison_key("ｗ/1\\u200b ") == comparison_key("w/1")
        True
    """
    return _SPACE.sub(" ", visible(unicodedata.normalize("NFKC", text))).strip()
