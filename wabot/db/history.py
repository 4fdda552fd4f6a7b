"""Conversation history as readable values: one entry per inbound or outbound message."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from wabot.db import codec
from wabot.whatsapp import outbound


def entry(row: tuple[Any, ...], *, timezone: str = "UTC") -> dict[str, Any]:
    """A `Store.history` row as a JSON-ready mapping."""
    customer, at, direction, payload, status, error = row
    item: dict[str, Any] = {
        "customer": customer,
        "at": datetime.fromtimestamp(at, ZoneInfo(timezone)).isoformat(timespec="seconds"),
        "direction": direction,
    }
    if direction == "in":
        message = codec.load_pending(payload)
        if isinstance(message, codec.Started):
            item.update(type="start", text=f"[the business API started the flow {message.flow}]", status=status)
            return item
        item.update(id=message.id, type=message.type, text=message.text or f"[{message.type}]", status=status)
    else:
        body = json.loads(payload)
        item.update(type=body.get("type", "?"), text=outbound.shown(body), status=status)
        if error:
            item["error"] = error
    return item


def lines(entries: list[dict[str, Any]]) -> Iterator[str]:
    """A conversation for the terminal: time, who, what, delivery status."""
    for e in entries:
        who = "customer" if e["direction"] == "in" else "bot     "
        status = "" if e["direction"] == "in" else f"  [{e['status']}{': ' + e['error'] if 'error' in e else ''}]"
        yield f"{e['at'].replace('T', ' ')}  {who}  {e['text']}{status}"  # with its zone, as the log's times


def timer_lines(timers: list[dict[str, Any]], *, timezone: str = "UTC") -> Iterator[str]:
    """A customer's flow timers for the terminal, by when they are due: when, what, where, and what became of it."""
    for t in sorted(timers, key=lambda t: (t["due"], t["id"])):
        due = datetime.fromtimestamp(t["due"], ZoneInfo(timezone)).isoformat(sep=" ", timespec="seconds")
        what = f"{t['kind']} {t['n']}" if t["kind"] == "remind" else t["kind"]
        outcome = t["status"] + (f": {t['note']}" if t["note"] else "")
        yield f"{due}  timer     {what} at {t['flow']}/{t['step']}  [{outcome}]"


def number_pattern(text: str) -> str | None:
    """A number as people write it -> a GLOB pattern over stored wa_ids; None when it is no number.

    +84 912 345 678, 0084912345678 and 84912345678 are the same customer; 0912345678 (the national form)
    matches the numbers ending in 912345678; 8491****678 (the masked form the log prints) keeps its length.
    """
    digits = re.sub(r"[\s().-]", "", text)
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    if not re.fullmatch(r"[\d*]{4,20}", digits) or digits.count("*") == len(digits):
        return None
    if digits.startswith("0"):
        return "*" + digits[1:].replace("*", "?")
    return digits.replace("*", "?")
