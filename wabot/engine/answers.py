"""Typed answers to an `ask`: what Vietnamese customers type -> a value to save, or a miss.

Pure parsing, no flow logic: numbers in Vietnamese or English notation, dates, phone
numbers, yes/no words, e-mail, regex, text length, media and locations. Choices are
matched by `menus.py`, like menu options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from wabot.flows.model import Expect
from wabot.text import fold
from wabot.whatsapp import inbound


@dataclass(frozen=True, slots=True)
class Answer:
    """`ok` False: the reply does not fit what the step expects."""

    ok: bool
    value: Any = None


MISS = Answer(False)


def parse(expect: Expect, message: inbound.Message, *, today: date) -> Answer:
    """The value to save for `message` under `expect` (any kind but choice), or MISS."""
    content, text = message.content, message.text.strip()
    kind = expect.kind
    if kind in inbound.MEDIA_KINDS or kind == "media":
        if isinstance(content, inbound.Media) and kind in (content.kind, "media"):
            return Answer(True, media_value(content))
        return MISS
    if kind == "location":
        return Answer(True, location_value(content)) if isinstance(content, inbound.Location) else MISS
    if kind == "any":
        if isinstance(content, inbound.Media):
            return Answer(True, media_value(content))
        if isinstance(content, inbound.Location):
            return Answer(True, location_value(content))
        return Answer(True, text)
    if not text:
        return MISS
    value: Any
    if kind in ("number", "integer"):
        value = parse_number(text)
        if value is None or (kind == "integer" and not float(value).is_integer()):
            return MISS
        value = int(value) if kind == "integer" else value
        return Answer(True, value) if _within(value, expect) else MISS
    if kind == "text":
        return Answer(True, text) if _within(len(text), expect) else MISS
    if kind == "email":
        value = parse_email(text)
    elif kind == "phone":
        value = parse_phone(text)
    elif kind == "date":
        value = parse_date(text, today=today)
    elif kind == "yes_no":
        value = parse_yes_no(text)
    elif kind == "regex":
        value = text if expect.pattern and re.search(expect.pattern, text, re.IGNORECASE) else None
    else:
        raise ValueError(f"unknown answer kind {kind!r}")
    return MISS if value is None else Answer(True, value)


def _within(value: float, expect: Expect) -> bool:
    return (expect.min is None or value >= expect.min) and (expect.max is None or value <= expect.max)


def media_value(media: inbound.Media) -> dict[str, Any]:
    return {"kind": media.kind, "id": media.id, "mime_type": media.mime_type, "caption": media.caption}


def location_value(location: inbound.Location) -> dict[str, Any]:
    return {
        "latitude": location.latitude,
        "longitude": location.longitude,
        "name": location.name,
        "address": location.address,
    }


# --- numbers ---------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^([+-]?)\s*(\d[\d.,]*)\s*([^\d\s.,+-]*)$")
_UNITS = {"": 1, "k": 1000, "nghin": 1000, "ngan": 1000, "tr": 1_000_000, "trieu": 1_000_000,
          "d": 1, "vnd": 1, "dong": 1}
# counting words customers add after a quantity: "2 ly", "3 phần"
_UNITS.update(dict.fromkeys(
    ("cai", "ly", "phan", "hop", "chiec", "suat", "nguoi", "coc", "chai", "goi", "qua", "to", "dia", "ve", "kg"), 1
))


def parse_number(text: str) -> int | float | None:
    """ "1.234,5" -> 1234.5, "1,5" -> 1.5, "1.5" -> 1.5, "150.000" -> 150000, "50k" -> 50000."""
    match = _NUMBER.match(text.strip().lower())
    if not match:
        return None
    sign, digits, unit = match.groups()
    factor = _UNITS.get(fold(unit))
    value = _digits(digits)
    if factor is None or value is None:
        return None
    value = value * factor
    if factor > 1 and float(value).is_integer():
        value = int(value)
    return -value if sign == "-" else value


def _digits(digits: str) -> int | float | None:
    """Decide which of `.` and `,` is the decimal separator."""
    digits = digits.rstrip(".,")
    if not digits:
        return None
    dots, commas = digits.count("."), digits.count(",")
    if dots and commas:
        decimal = "." if digits.rfind(".") > digits.rfind(",") else ","
        thousands = "," if decimal == "." else "."
        whole, _, fraction = digits.rpartition(decimal)
        if decimal in whole or not _grouped(whole, thousands):
            return None
        return float(whole.replace(thousands, "") + "." + fraction)
    separator = "." if dots else "," if commas else ""
    if not separator:
        return int(digits)
    parts = digits.split(separator)
    # one separator before exactly three digits reads as thousands ("150.000", "150,000"): prices are
    # far more common in a shop than three-decimal numbers
    if len(parts) > 2 or len(parts[1]) == 3:
        return int("".join(parts)) if _grouped(digits, separator) else None
    return float(parts[0] + "." + parts[1])


def _grouped(digits: str, separator: str) -> bool:
    parts = digits.split(separator)
    return 1 <= len(parts[0]) <= 3 and all(len(p) == 3 for p in parts[1:]) if len(parts) > 1 else True


# --- e-mail, phone, date, yes/no ------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")


def parse_email(text: str) -> str | None:
    text = text.strip()
    if not _EMAIL.match(text):
        return None
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


def parse_phone(text: str) -> str | None:
    """Vietnamese numbers in local form ("0912345678"); other countries as "+<digits>"."""
    compact = re.sub(r"[\s.\-()]", "", text.strip())
    if not re.fullmatch(r"\+?\d+", compact):
        return None
    if compact.startswith("+84") or (compact.startswith("84") and len(compact) in (11, 12)):
        compact = "0" + compact.removeprefix("+").removeprefix("84")
    if compact.startswith("0"):
        return compact if len(compact) in (10, 11) and compact[1] != "0" else None
    if compact.startswith("+") and 8 <= len(compact) - 1 <= 15:
        return compact
    return None


_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})(?:[/.\-](\d{2}|\d{4}))?$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_RELATIVE = {"hom nay": 0, "nay": 0, "today": 0, "ngay mai": 1, "mai": 1, "tomorrow": 1,
             "ngay kia": 2, "mot": 2, "hom qua": -1, "yesterday": -1}


def parse_date(text: str, *, today: date) -> str | None:
    """dd/mm/yyyy, d/m/yy, d/m (this year), ISO, "hôm nay", "ngày mai" -> "2026-11-25"."""
    text = text.strip()
    if fold(text) in _RELATIVE:
        return (today + timedelta(days=_RELATIVE[fold(text)])).isoformat()
    try:
        if m := _ISO.match(text):
            return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        if m := _DMY.match(text):
            year = int(m[3]) if m[3] else today.year
            year = year + 2000 if year < 100 else year
            return date(year, int(m[2]), int(m[1])).isoformat()
    except ValueError:
        return None
    return None


YES = frozenset({"co", "c", "yes", "y", "ok", "oke", "okay", "u", "uh", "um", "uk", "dong y", "dung", "dung roi",
                 "vang", "da", "roi", "chac chan", "duoc", "dc", "true", "co chu", "tat nhien", "yep", "sure"})
NO = frozenset({"khong", "ko", "k", "kh", "khg", "hong", "hok", "no", "n", "nope", "thoi", "sai", "chua", "false",
                "khong dong y", "khong phai", "khong can", "huy"})
_POLITE = ("da", "vang", "a", "nhe", "nha", "oi")
_UNSURE = ("co le", "co the", "khong biet", "khong chac", "chua biet", "chua chac", "de xem", "maybe", "not sure")


def parse_yes_no(text: str) -> bool | None:
    """ "Có", "co", "ừ", "đồng ý", "ok" -> True; "không", "ko", "no" -> False; else None."""
    words = fold(text).split()
    while len(words) > 1 and words[0] in _POLITE:
        words = words[1:]
    while len(words) > 1 and words[-1] in _POLITE:
        words = words[:-1]
    phrase = " ".join(words)
    if phrase.startswith(_UNSURE):
        return None
    for candidate in (phrase, words[0] if words else ""):
        if candidate in NO:
            return False
        if candidate in YES:
            return True
    return None


# --- hints when an answer does not fit -------------------------------------------------------------

_HINTS: dict[str, tuple[str, str]] = {
    "text": ("Bạn trả lời bằng chữ giúp mình nhé.", "Please answer with a text message."),
    "number": ("Bạn nhập một con số giúp mình nhé (ví dụ 2 hoặc 1,5).", "Please type a number (e.g. 2 or 1.5)."),
    "integer": ("Bạn nhập một số nguyên giúp mình nhé (ví dụ 2).", "Please type a whole number (e.g. 2)."),
    "email": ("Email chưa đúng, ví dụ ten@gmail.com.", "That is not an e-mail address, e.g. name@gmail.com."),
    "phone": ("Số điện thoại chưa đúng, ví dụ 0912 345 678.", "That is not a phone number, e.g. 0912 345 678."),
    "date": ("Bạn nhập ngày theo dạng ngày/tháng/năm nhé, ví dụ 25/11/2026.",
             "Please type a date as day/month/year, e.g. 25/11/2026."),
    "yes_no": ("Bạn trả lời có hoặc không giúp mình nhé.", "Please answer yes or no."),
    "choice": ("Bạn chọn một mục bên dưới nhé.", "Please pick one of the options below."),
    "regex": ("Câu trả lời chưa đúng dạng, bạn thử lại nhé.", "That is not in the expected form, please try again."),
    "location": ("Bạn gửi vị trí (📎 > Vị trí) giúp mình nhé.", "Please share a location (📎 > Location)."),
    "media": ("Bạn gửi hình hoặc tệp giúp mình nhé.", "Please send a photo or a file."),
}


def hint(expect: Expect, lang: str) -> str:
    """A plain sentence telling the customer what kind of answer is expected."""
    kind = "media" if expect.kind in inbound.MEDIA_KINDS else expect.kind
    vi, en = _HINTS.get(kind, _HINTS["text"])
    if kind in ("number", "integer", "text") and (expect.min is not None or expect.max is not None):
        vi, en = _bounds(kind, expect)
    return en if lang == "en" else vi


def _bounds(kind: str, expect: Expect) -> tuple[str, str]:
    low, high = (f"{v:g}" if v is not None else None for v in (expect.min, expect.max))
    if kind == "text":
        vi, en = "Câu trả lời cần {} ký tự nhé.", "Your answer needs {} characters."
    else:
        vi, en = "Bạn nhập một số {} nhé.", "Please type a number {}."
    if low and high:
        return vi.format(f"từ {low} đến {high}"), en.format(f"from {low} to {high}")
    if low:
        return vi.format(f"từ {low} trở lên"), en.format(f"of at least {low}")
    return vi.format(f"tối đa {high}"), en.format(f"of at most {high}")
