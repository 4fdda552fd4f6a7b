"""Conversation history as readable values: one entry per inbound or outbound message."""

from __future__ import annotations

import json
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
        message = codec.load_message(payload)
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
        yield f"{e['at'][:19].replace('T', ' ')}  {who}  {e['text']}{status}"
