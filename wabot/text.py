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


def _base(ch: str) -> str:
    """The bare lower-case letter under a Vietnamese one ("Ữ" -> "u", "Đ" -> "d"); other characters as they are."""
    bare = "".join(c for c in unicodedata.normalize("NFD", ch.casefold()) if not unicodedata.combining(c))
    return "d" if bare == "đ" else bare


# every Latin letter Vietnamese writes (and more), both cases, by the bare letter it folds to: "d" -> "DdĎďĐđ"
_LETTERS = "".join(chr(c) for c in [*range(0x41, 0x5B), *range(0x61, 0x7B), *range(0xC0, 0x250),
                                    *range(0x1EA0, 0x1F00)])
VARIANTS: dict[str, str] = {}
for _ch in _LETTERS:
    if len(_b := _base(_ch)) == 1 and "a" <= _b <= "z" and unicodedata.category(_ch).startswith("L"):
        VARIANTS[_b] = VARIANTS.get(_b, "") + _ch


def loose(query: str) -> list[str]:
    """The query as one entry a character: the set of letters that match it whatever their case and diacritics
    ("Duc" -> ["dDđĐ...", "uUùúủ...", "cC"]), or the character itself (digits, punctuation, spaces)."""
    return [VARIANTS.get(_base(ch), ch) if len(_base(ch)) == 1 else ch for ch in query]
