"""Typed answers to an `ask`: what Vietnamese customers type -> a value to save, or a miss.

Pure parsing, no flow logic: numbers in Vietnamese or English notation, dates, phone
numbers, yes/no words, e-mail, regex, text length, media and locations. Choices are
matched by `menus.py`, like menu options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from wabot import dates
from wabot.flows.model import Expect
from wabot.text import fold
from wabot.whatsapp import inbound


@dataclass(frozen=True, slots=True)
class Answer:
    """`ok` False: the reply does not fit what the step expects."""

    ok: bool
    value: Any = None
    why: tuple[str, str] | None = None  # (vi, en): why a well-formed answer was refused (a date out of bounds)


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
    if not text or isinstance(content, inbound.Media):
        return MISS  # a photo's caption is not a typed answer (issue 11)
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
    elif kind in ("date", "time", "datetime"):
        return _moment(expect, kind, text, today=today)
    elif kind == "yes_no":
        value = parse_yes_no(text)
    elif kind == "regex":
        found = re.search(expect.pattern, text, re.IGNORECASE) if expect.pattern else None
        value = found[0] if found else None  # the match, as a route's `save` keeps: "HP12345", not the sentence
    else:
        raise ValueError(f"unknown answer kind {kind!r}")
    return MISS if value is None else Answer(True, value)


def _moment(expect: Expect, kind: str, text: str, *, today: date) -> Answer:
    """A date ("2026-12-25"), a time ("14:30") or both ("2026-12-25 14:30"), within the step's bounds."""
    if kind == "time":
        value = dates.parse_time(text)
    elif kind == "datetime":
        value = dates.parse_datetime(text, today=today)
    else:
        value = dates.parse_date(text, today=today)
    if value is None:
        return MISS
    if kind == "time":
        low, high, shown = expect.earliest, expect.latest, value
    else:
        low = dates.bound(expect.earliest, today=today) if expect.earliest else None
        high = dates.bound(expect.latest, today=today) if expect.latest else None
        shown = value[:10]
    if low is not None and shown < low:
        return Answer(False, why=_too_early(low, kind, today=today))
    if high is not None and shown > high:
        if kind == "time":
            return Answer(False, why=(f"Bên mình nhận đến {high}, bạn chọn giờ sớm hơn nhé.",
                                      f"Please choose {high} or earlier."))
        return Answer(False, why=(f"Bạn chọn ngày đến {_day(high)} thôi nhé.",
                                  f"Please choose {_day(high)} or earlier."))
    return Answer(True, value)


def _too_early(low: str, kind: str, *, today: date) -> tuple[str, str]:
    if kind == "time":
        return (f"Bên mình bắt đầu từ {low}, bạn chọn giờ muộn hơn nhé.", f"Please choose {low} or later.")
    if low == today.isoformat():
        return ("Ngày đó đã qua rồi, bạn chọn từ hôm nay trở đi nhé.",
                "That day has passed; please choose today or later.")
    return (f"Bạn chọn từ ngày {_day(low)} trở đi nhé.", f"Please choose {_day(low)} or later.")


def _day(value: str) -> str:
    return date.fromisoformat(value).strftime("%d/%m/%Y")


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


_PHONE = re.compile(r"\+?\(?\d[\d\s.\-()]*\d")
# Vietnam's numbering plan since 2018: 10-digit mobiles by network prefix, 11-digit landlines 02x (area code)
_VN_MOBILE = re.compile(r"^0(?:3[2-9]|5[2689]|7[06-9]|8[1-9]|9\d)\d{7}$")
_VN_LANDLINE = re.compile(r"^02\d{9}$")


def parse_phone(text: str) -> str | None:
    """A phone number in a sentence ("số em là 0912 345 678 ạ"): Vietnamese ones in local form ("0912345678"),
    checked against the numbering plan (no retired 11-digit mobiles); other countries as "+<digits>"."""
    for found in _PHONE.finditer(text):
        raw = re.sub(r"^(\+?84)\s*\(0\)", r"\1", found[0].strip())  # "+84 (0) 912 ..."
        compact = re.sub(r"[\s.\-()]", "", raw)
        digits = compact.removeprefix("+")
        if len(digits) < 8:
            continue
        if compact.startswith("+84") or (compact.startswith("84") and len(compact) in (11, 12)):
            compact = "0" + digits.removeprefix("84")
        if compact.startswith("0"):
            return compact if _VN_MOBILE.match(compact) or _VN_LANDLINE.match(compact) else None
        if compact.startswith("+") and 8 <= len(digits) <= 15:
            return compact
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
    "date": ("Bạn nhập ngày giúp mình nhé, ví dụ 25/12, mai, thứ 3 hoặc 25 tháng 12.",
             "Please type a date, e.g. 25/12, tomorrow (mai) or Tuesday (thứ 3)."),
    "time": ("Bạn nhập giờ giúp mình nhé, ví dụ 9h, 9h30, 14:00 hoặc 2 giờ chiều.",
             "Please type a time, e.g. 9h, 9:30, 14:00 or 2 giờ chiều."),
    "datetime": ("Bạn nhập ngày và giờ giúp mình nhé, ví dụ sáng mai 9h hoặc 25/12 14:00.",
                 "Please type a day and a time, e.g. 25/12 14:00 or sáng mai 9h."),
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
