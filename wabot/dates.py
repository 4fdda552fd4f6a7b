"""Dates and times as Vietnamese customers type them (issue 11, item 7): pure parsing, `today` given.

Dates: 25/12, 25/12/2026, 2026-12-25, hôm nay, mai, mốt, ngày kia, thứ 3, thứ ba, T3, chủ nhật, CN,
thứ 6 tuần sau, tuần sau, ngày 25, 25 tháng 12, 25 thg 12 (2026). A date without a year is the next
such date (on 20/12, 5/1 is next January). Times: 9h, 9h30, 9:30, 14:00, 9 giờ, 2 giờ chiều, 9 rưỡi.
Durations (flow timers): 30s, 30m, 2h, 1d, 1w, 1h30m, 30 phút, 2 giờ, 2 tiếng, 1 ngày, 1 tuần.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from wabot.text import fold

__all__ = ["bound", "parse_date", "parse_datetime", "parse_duration", "parse_moment", "parse_time"]

_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})(?:[/.\-](\d{2}|\d{4}))?$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_RELATIVE = {"hom nay": 0, "nay": 0, "today": 0, "ngay mai": 1, "mai": 1, "tomorrow": 1,
             "ngay kia": 2, "mot": 2, "ngay mot": 2, "hom qua": -1, "yesterday": -1}
_WEEKDAYS = {"2": 0, "hai": 0, "3": 1, "ba": 1, "4": 2, "tu": 2, "5": 3, "nam": 3, "6": 4, "sau": 4,
             "7": 5, "bay": 5}
_WEEKDAY = re.compile(r"^(?:thu\s*|t)(2|3|4|5|6|7|hai|ba|tu|nam|sau|bay)$|^(chu nhat|cn)$")
_NEXT_WEEK = re.compile(r"\s+(?:tuan|t)\s*(?:sau|toi)$")
_DAY_MONTH = re.compile(r"^(?:ngay\s+)?(\d{1,2})(?:\s+(?:thang|thg|th)\s*(\d{1,2})(?:\s+(?:nam\s+)?(\d{4}))?)?$")
_POLITE = re.compile(r"\s+(?:a|nhe|nha|nhen|ne|di|luon)$")
_TIME = re.compile(
    r"^(\d{1,2})(?:\s*(?:h|g|gio)\s*(\d{1,2})?\s*(?:p|phut)?)?\s*(ruoi)?\s*(sang|trua|chieu|toi|dem)?$"
)
_AFTERNOON = ("chieu", "toi", "dem")


def _clean(text: str) -> str:
    folded = fold(text)
    while (shorter := _POLITE.sub("", folded)) != folded:
        folded = shorter
    return folded.strip()


def parse_date(text: str, *, today: date) -> str | None:
    """The date a customer typed as "2026-12-25", or None."""
    raw, folded = text.strip(), _clean(text)
    try:
        if folded in _RELATIVE:
            return (today + timedelta(days=_RELATIVE[folded])).isoformat()
        if m := _ISO.match(raw):
            return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        if m := _DMY.match(raw) or _DMY.match(folded):
            return _next(today, int(m[1]), int(m[2]), m[3])
        if folded in ("tuan sau", "tuan toi"):
            return (today + timedelta(days=7 - today.weekday())).isoformat()  # Monday of next week
        next_week = bool(_NEXT_WEEK.search(folded))
        if m := _WEEKDAY.match(_NEXT_WEEK.sub("", folded)):
            weekday = 6 if m[2] else _WEEKDAYS[m[1]]
            if next_week:
                return (today + timedelta(days=7 - today.weekday() + weekday)).isoformat()
            return (today + timedelta(days=(weekday - today.weekday()) % 7)).isoformat()
        if m := _DAY_MONTH.match(folded):
            if m[2] is None:
                if not folded.startswith("ngay"):
                    return None  # a bare number is not a date
                return _day_of_month(today, int(m[1]))
            return _next(today, int(m[1]), int(m[2]), m[3])
    except ValueError:
        return None
    return None


def _next(today: date, day: int, month: int, year: str | None) -> str:
    """day/month in `year`, or without one the next such date (today included)."""
    if year:
        full = int(year) + 2000 if len(year) == 2 else int(year)
        return date(full, month, day).isoformat()
    found = date(today.year, month, day) if _valid(today.year, month, day) else None
    if found is None or found < today:
        found = date(today.year + 1, month, day)
    return found.isoformat()


def _valid(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _day_of_month(today: date, day: int) -> str:
    """"ngày 25": this month's, or next month's when it has passed."""
    year, month = today.year, today.month
    for _ in range(3):
        if _valid(year, month, day) and date(year, month, day) >= today:
            return date(year, month, day).isoformat()
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise ValueError(day)


def parse_time(text: str) -> str | None:
    """The time a customer typed as "14:30", or None."""
    m = _TIME.match(_clean(text.replace(":", "h")))
    if m is None or not (m[0] != m[1] and (m[0][len(m[1]):].strip())):
        return None  # a bare number is not a time
    hour = int(m[1])
    minute = int(m[2]) if m[2] else 30 if m[3] else 0
    part = m[4]
    if part in _AFTERNOON and 1 <= hour <= 11:
        hour += 12
    if part == "trua" and hour < 6:
        hour += 12  # "1 giờ trưa" is 13:00
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return time(hour, minute).strftime("%H:%M")


_PARTS = ("sang", "trua", "chieu", "toi", "dem")


_FILLER = frozenset({"luc", "vao", "at", "on"})


def parse_datetime(text: str, *, today: date) -> str | None:
    """A date and a time in one answer ("sáng mai 9h", "9h thứ 6", "25/12 14:00") as "2026-12-25 14:00"."""
    words = [w for w in text.lower().split() if fold(w) not in _FILLER]
    part = next((fold(w) for w in words if fold(w) in _PARTS), "")
    words = [w for w in words if fold(w) not in _PARTS]  # "sáng mai 9h": the part of day belongs to the time
    for cut in range(1, len(words)):
        for day_words, time_words in ((words[:cut], words[cut:]), (words[cut:], words[:cut])):
            day = parse_date(" ".join(day_words), today=today)
            at = parse_time(" ".join([*time_words, part]))
            if day and at:
                return f"{day} {at}"
    return None


def bound(value: str | float, *, today: date) -> str:
    """A date bound as written in a flow ("today", "tomorrow", "+60d", "2026-12-31") as an ISO date."""
    text = str(value).strip().lower()
    if text in ("today", "hom nay"):
        return today.isoformat()
    if text in ("tomorrow", "mai"):
        return (today + timedelta(days=1)).isoformat()
    if m := re.fullmatch(r"([+-]\d+)\s*d(?:ays?)?", text):
        return (today + timedelta(days=int(m[1]))).isoformat()
    return date.fromisoformat(text).isoformat()


_UNITS = {"s": 1, "sec": 1, "giay": 1, "m": 60, "min": 60, "p": 60, "phut": 60, "h": 3600, "g": 3600, "gio": 3600,
          "tieng": 3600, "d": 86400, "day": 86400, "days": 86400, "ngay": 86400, "w": 604800, "tuan": 604800}
_DURATION_PART = re.compile(r"(\d+(?:[.,]\d+)?)\s*(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")\b")


def parse_duration(text: str) -> float | None:
    """Seconds in "30m", "2h", "1d", "1h30m", "90s", "1w", "30 phút", "2 tiếng", "1 ngày"; None if not one.

    A unit is required: a bare number says nothing about minutes or hours.
    """
    if re.search(r"[^\w\s.,]", text):
        return None  # "-2h", "2h!": not a duration
    folded = "".join(fold(part) or part for part in re.split(r"([.,])", text)).replace(" ", "").replace(",", ".")
    spaced = re.sub(r"([a-z])(\d)", r"\1 \2", re.sub(r"(\d)([a-z])", r"\1 \2", folded))
    total, end = 0.0, 0
    for m in _DURATION_PART.finditer(spaced):
        if spaced[end:m.start()].strip():
            return None
        total += float(m[1].replace(",", ".")) * _UNITS[m[2]]
        end = m.end()
    if end == 0 or spaced[end:].strip() or total <= 0:
        return None
    return total


def parse_moment(value: object, *, today: date) -> datetime | None:
    """A saved date or date and time ("2026-12-25", "2026-12-25 09:00", "25/12 9h", "thứ 6") without a zone.

    A date alone is at 00:00. None when the value is neither.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime.combine(value, time())
    text = str(value or "").strip()
    if not text:
        return None
    try:
        found = datetime.fromisoformat(text)
        return found.replace(tzinfo=None) if found.tzinfo is None else found
    except ValueError:
        pass
    both = parse_datetime(text, today=today)
    if both:
        return datetime.fromisoformat(both)
    day = parse_date(text, today=today)
    return datetime.fromisoformat(day) if day else None
