"""Conversations for people: the stored messages as entries a page shows, media included."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wabot.db import codec
from wabot.whatsapp import inbound

__all__ = ["Entry", "entries"]

MEDIA = ("image", "video", "audio", "document", "sticker")


@dataclass(frozen=True, slots=True)
class Entry:
    """One message of a conversation as the console shows it."""

    at: float
    direction: str  # "in" from the customer, "out" to the customer
    text: str
    status: str  # the delivery tick of an outgoing message: queued, sent, delivered, read, failed
    error: str = ""
    agent: str = ""  # the person who sent it; empty for the bot
    kind: str = "text"
    link: str = ""  # a picture or file the bot sent by link
    media: str = ""  # the Graph media id of a file the customer sent (fetched through the console)
    label: str = ""  # that file's name, or its type


def entries(rows: list[tuple[Any, ...]]) -> list[Entry]:
    """`reports.messages` rows as entries."""
    out: list[Entry] = []
    for at, direction, payload, status, error, agent, _ in rows:
        if direction == "in":
            try:
                message = codec.load_pending(payload)
            except (ValueError, KeyError, TypeError):  # written by another version: show that, not an error page
                out.append(Entry(at, "in", "[a message this version cannot read]", "", kind="unknown"))
                continue
            if isinstance(message, codec.Started):
                out.append(Entry(at, "in", f"▶ {message.flow}", "", kind="start"))
                continue
            content = message.content
            if isinstance(content, inbound.Media):
                label = content.filename or content.mime_type or content.kind
                out.append(Entry(at, "in", _inbound(message), "", kind=content.kind, media=content.id, label=label))
            else:
                out.append(Entry(at, "in", _inbound(message), "", kind=message.type))
        else:
            body = json.loads(payload)
            kind = str(body.get("type", "?"))
            part = body.get(kind) if isinstance(body.get(kind), dict) else {}
            link = str(part.get("link", "")) if kind in MEDIA else ""
            out.append(Entry(at, "out", _outbound(body, kind, part), status, error or "", agent or "", kind, link))
    return out


def _inbound(message: inbound.Message) -> str:
    content = message.content
    if isinstance(content, inbound.Media):
        said = content.caption or content.filename or ""
        return f"[{content.kind}] {said}".strip()
    if isinstance(content, inbound.Location):
        return f"[location] {content.name or ''} {content.latitude:.5f},{content.longitude:.5f}".strip()
    return message.text or f"[{message.type}]"


def _outbound(body: dict[str, Any], kind: str, part: dict[str, Any]) -> str:
    if kind == "text":
        return str(part.get("body", ""))
    if kind == "interactive":
        text = str((part.get("body") or {}).get("text", ""))
        action = part.get("action") or {}
        titles = [b.get("reply", {}).get("title", "") for b in action.get("buttons", [])]
        titles += [r.get("title", "") for s in action.get("sections", []) for r in s.get("rows", [])]
        return text + (" [" + " | ".join(t for t in titles if t) + "]" if titles else "")
    if kind == "template":
        return f"[template {part.get('name', '')}]"
    if kind in MEDIA:
        return f"[{kind}] {part.get('caption', '') or part.get('filename', '')}".strip()
    return f"[{kind}]"
