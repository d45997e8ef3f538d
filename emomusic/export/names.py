"""The one file-name sanitiser: user words (emotions, prompts, upload names) → a safe file-name stem.

Why one: the CLI names its default output after the prompt and the demo names its downloads after the
emotion and the upload; two sanitisers drifted (one folded accents, the other kept runs of dashes).
A prompt such as "../../etc/x", one holding control characters or a newline, or a 5,000-character
sentence must never pick where a file goes, break a terminal or overflow a file-name limit.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["safe_stem"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def safe_stem(text: object, limit: int = 80, fallback: str = "piece") -> str:
    """`text` as a plain file-name stem: ASCII letters, digits, '_' and single '-' between words.

    Accents are folded ("café" → "cafe"); every run of other characters (separators, dots, spaces,
    control characters) becomes one '-'; leading and trailing '-'/'_' are dropped, so no result is
    "..", hidden, or starts with an option-like '-'.

    Args:
        text: any user-supplied words (str() is taken, so None or numbers are fine).
        limit: the most characters kept (cut at a word boundary only by the stripping).
        fallback: returned when nothing usable is left (e.g. for "..", "" or "名前"); "" allowed.

    Returns:
        The stem, never longer than `limit` characters (the fallback is returned as given).
    """
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    stem = _UNSAFE.sub("-", ascii_text).strip("-_")[: max(0, int(limit))].strip("-_")
    return stem or fallback
