"""Text folding for forgiving matches: case, spacing and Vietnamese diacritics do not matter."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SPACE = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")


@lru_cache(maxsize=16384)  # the same titles, keywords and short answers come back all the time
def fold(text: str) -> str:
    """`"  Đặt   HÀNG! "` -> `"dat hang"`: lower case, no diacritics, no punctuation, single spaces."""
    decomposed = unicodedata.normalize("NFD", text.casefold()).replace("đ", "d")
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACE.sub(" ", _PUNCT.sub(" ", bare)).strip()


def e164(phone: str) -> str:
    """A phone number as `expect: phone` saves it, in E.164: "0912345678" -> "+84912345678"."""
    return "+84" + phone[1:] if phone.startswith("0") else phone
