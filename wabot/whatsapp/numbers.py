"""What a WhatsApp number looks like: the country code and the subscriber number, 8 to 15 digits (E.164)."""

from __future__ import annotations

import re

__all__ = ["normalise"]

_NUMBER = re.compile(r"\d{8,15}")
_SEPARATORS = re.compile(r"[\s().-]")


def normalise(number: str) -> str | None:
    """The number as digits only ("+84 91-234 5678" -> "84912345678"), or None when it cannot be one."""
    digits = _SEPARATORS.sub("", number.strip()).removeprefix("+")
    return digits if _NUMBER.fullmatch(digits) else None
