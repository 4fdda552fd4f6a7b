"""Typed outgoing messages, WhatsApp's limits on them, and their Graph API request bodies.

The engine produces these values; the outbox stores `to_body(...)` and the Graph
client posts it. `check_limits` says, in plain words, which limit a message broke.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from wabot.errors import LimitError
from wabot.whatsapp.inbound import MEDIA_KINDS, MediaKind


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where a message goes: the phone number (`to`) or, without one, the business-scoped user id."""

    wa_id: str | None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Text:
    body: str
    preview_url: bool = False


@dataclass(frozen=True, slots=True)
class Button:
    id: str
    title: str


@dataclass(frozen=True, slots=True)
class Buttons:
    """Reply buttons (1 to 3)."""

    body: str
    buttons: tuple[Button, ...]
    header: str | None = None
    footer: str | None = None


@dataclass(frozen=True, slots=True)
class Row:
    id: str
    title: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Section:
    title: str | None
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class ListMessage:
    """A list message: one button that opens up to 10 rows in up to 10 sections."""

    body: str
    button: str
    sections: tuple[Section, ...]
    header: str | None = None
    footer: str | None = None


@dataclass(frozen=True, slots=True)
class CtaUrl:
    """A message with one button that opens a URL."""

    body: str
    display_text: str
    url: str
    header: str | None = None
    footer: str | None = None


@dataclass(frozen=True, slots=True)
class Media:
    """image, video, audio, document or sticker, by `link` (https URL) or uploaded media `id`."""

    kind: MediaKind
    link: str | None = None
    id: str | None = None
    caption: str | None = None
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Contacts:
    """Contact cards in Meta's shape (name, phones, emails, ...)."""

    contacts: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Template:
    """An approved template message; `components` are in Meta's shape (header/body/button parameters)."""

    name: str
    language: str
    components: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Reaction:
    """React to a customer's message; `emoji=""` removes our reaction."""

    message_id: str
    emoji: str


Outgoing = Text | Buttons | ListMessage | CtaUrl | Media | Location | Contacts | Template | Reaction


@dataclass(frozen=True, slots=True)
class MarkRead:
    """Mark an inbound message read, optionally showing the typing indicator (up to 25 s)."""

    message_id: str
    typing: bool = False


# WhatsApp's limits (Meta's send-message reference; see the facts sheet in the README's sources)
TEXT_BODY = 4096
INTERACTIVE_BODY = 1024
HEADER = FOOTER = 60
BUTTON_TITLE = 20
BUTTON_ID = 256
MAX_BUTTONS = 3
LIST_BUTTON = 20
SECTION_TITLE = ROW_TITLE = 24
ROW_DESCRIPTION = 72
ROW_ID = 200
MAX_ROWS = MAX_SECTIONS = 10
CTA_TEXT = 20
CAPTION = 1024
NO_CAPTION = ("audio", "sticker")  # media WhatsApp shows without a caption


def check_limits(message: Outgoing) -> None:
    """Raise LimitError naming the field and the limit if `message` breaks a WhatsApp limit."""
    if isinstance(message, Text):
        _length("the text", message.body, TEXT_BODY, "text.body")
    elif isinstance(message, Buttons):
        _interactive(message.body, message.header, message.footer)
        if not 1 <= len(message.buttons) <= MAX_BUTTONS:
            raise LimitError(
                f"a message can carry 1 to {MAX_BUTTONS} reply buttons, not {len(message.buttons)}",
                field="buttons", limit=MAX_BUTTONS,
            )
        for b in message.buttons:
            _length(f"the button title {b.title!r}", b.title, BUTTON_TITLE, "button.title")
            _length(f"the button id {b.id!r}", b.id, BUTTON_ID, "button.id")
            if b.id != b.id.strip():
                raise LimitError(f"the button id {b.id!r} must not start or end with a space", field="button.id",
                                 limit=0)
        _unique("button titles", [b.title for b in message.buttons], "button.title")
        _unique("button ids", [b.id for b in message.buttons], "button.id")
    elif isinstance(message, ListMessage):
        _interactive(message.body, message.header, message.footer)
        _length(f"the list button {message.button!r}", message.button, LIST_BUTTON, "list.button")
        rows = [r for section in message.sections for r in section.rows]
        if not 1 <= len(message.sections) <= MAX_SECTIONS or not 1 <= len(rows) <= MAX_ROWS:
            raise LimitError(
                f"a list holds 1 to {MAX_ROWS} rows in 1 to {MAX_SECTIONS} sections, "
                f"not {len(rows)} rows in {len(message.sections)} sections",
                field="list.rows", limit=MAX_ROWS,
            )
        for section in message.sections:
            if section.title is None and len(message.sections) > 1:
                raise LimitError("a list with several sections needs a title on each", field="section.title", limit=0)
            _length(f"the section title {section.title!r}", section.title, SECTION_TITLE, "section.title")
        for r in rows:
            _length(f"the row title {r.title!r}", r.title, ROW_TITLE, "row.title")
            _length(f"the description of row {r.title!r}", r.description, ROW_DESCRIPTION, "row.description")
            _length(f"the row id {r.id!r}", r.id, ROW_ID, "row.id")
        _unique("row ids", [r.id for r in rows], "row.id")
    elif isinstance(message, CtaUrl):
        _interactive(message.body, message.header, message.footer)
        _length(f"the link button {message.display_text!r}", message.display_text, CTA_TEXT, "cta.display_text")
        _http("the link", message.url, "cta.url")
    elif isinstance(message, Media):
        if message.kind not in MEDIA_KINDS:
            raise LimitError(f"{message.kind!r} is not a media kind WhatsApp sends", field="media.kind", limit=0)
        if bool(message.link) == bool(message.id):
            raise LimitError("a media message needs exactly one of a link or a media id", field="media", limit=0)
        if message.link:
            _http(f"the {message.kind} link", message.link, "media.link")
        if message.caption and message.kind in NO_CAPTION:
            raise LimitError(f"WhatsApp shows no caption on {message.kind} messages", field="media.caption", limit=0)
        _length("the caption", message.caption, CAPTION, "media.caption")
    elif isinstance(message, Location):
        if not (-90 <= message.latitude <= 90 and -180 <= message.longitude <= 180):
            raise LimitError(
                f"({message.latitude}, {message.longitude}) is not a place on Earth", field="location", limit=0
            )
    elif isinstance(message, Contacts):
        if not message.contacts or not all(
            isinstance(c.get("name"), dict) and c["name"].get("formatted_name") for c in message.contacts
        ):
            raise LimitError("every contact card needs name.formatted_name", field="contacts.name", limit=0)
    elif isinstance(message, Template) and (not message.name or not message.language):
        raise LimitError("a template message needs its name and language", field="template", limit=0)
    elif isinstance(message, Reaction) and not message.message_id:
        raise LimitError("a reaction needs the id of the message it reacts to", field="reaction.message_id", limit=0)


def _interactive(body: str, header: str | None, footer: str | None) -> None:
    _length("the message text", body, INTERACTIVE_BODY, "body.text")
    _length("the header", header, HEADER, "header.text")
    _length("the footer", footer, FOOTER, "footer.text")


MUST_HAVE_TEXT = ("text.body", "body.text", "button.title", "row.title", "button.id", "row.id", "list.button",
                  "cta.display_text")


def _length(what: str, value: str | None, limit: int, field: str) -> None:
    if value is None:
        return
    if not value.strip() and field in MUST_HAVE_TEXT:
        raise LimitError(f"{what} is empty", field=field, limit=limit)
    # counted as sent: to_body normalises to NFC, and decomposed Vietnamese is up to twice as long
    size = len(_nfc(value))
    if size > limit:
        raise LimitError(f"{what} has {size} characters; WhatsApp allows at most {limit}", field=field, limit=limit)


def _unique(what: str, values: list[str], field: str) -> None:
    values = [_nfc(v) for v in values]
    seen = {v for v in values if values.count(v) > 1}
    if seen:
        raise LimitError(f"{what} must differ from each other; repeated: {', '.join(sorted(seen))}", field=field,
                         limit=0)


def _http(what: str, url: str, field: str) -> None:
    if not url.startswith(("https://", "http://")):
        raise LimitError(f"{what} must start with https:// or http:// (got {url[:40]!r})", field=field, limit=0)


def to_body(recipient: Recipient, message: Outgoing) -> dict[str, Any]:
    """The JSON body of `POST /{version}/{phone-number-id}/messages` for this message."""
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    if recipient.wa_id:
        body["to"] = "+" + recipient.wa_id.lstrip("+")
    elif recipient.user_id:
        body["recipient"] = recipient.user_id  # a customer known only by a business-scoped user id
    else:
        raise LimitError("a message needs a recipient (a phone number or a user id)", field="to", limit=0)
    kind, part = _part(message)
    body["type"] = kind
    body[kind] = part
    return body


def _part(m: Outgoing) -> tuple[str, Any]:
    if isinstance(m, Text):
        return "text", {"preview_url": m.preview_url, "body": _nfc(m.body)}
    if isinstance(m, Buttons):
        buttons = [{"type": "reply", "reply": {"id": b.id, "title": _nfc(b.title)}} for b in m.buttons]
        return "interactive", _interactive_part("button", m.body, m.header, m.footer, {"buttons": buttons})
    if isinstance(m, ListMessage):
        sections = []
        for section in m.sections:
            rows = []
            for r in section.rows:
                row = {"id": r.id, "title": _nfc(r.title)}
                if r.description:
                    row["description"] = _nfc(r.description)
                rows.append(row)
            sections.append({"title": _nfc(section.title), "rows": rows} if section.title else {"rows": rows})
        action: dict[str, Any] = {"button": _nfc(m.button), "sections": sections}
        return "interactive", _interactive_part("list", m.body, m.header, m.footer, action)
    if isinstance(m, CtaUrl):
        action = {"name": "cta_url", "parameters": {"display_text": _nfc(m.display_text), "url": m.url}}
        return "interactive", _interactive_part("cta_url", m.body, m.header, m.footer, action)
    if isinstance(m, Media):
        media: dict[str, Any] = {"link": m.link} if m.link else {"id": m.id}
        if m.caption and m.kind not in NO_CAPTION:
            media["caption"] = _nfc(m.caption)
        if m.filename and m.kind == "document":
            media["filename"] = m.filename
        return m.kind, media
    if isinstance(m, Location):
        loc: dict[str, Any] = {"latitude": m.latitude, "longitude": m.longitude}
        if m.name:
            loc["name"] = _nfc(m.name)
        if m.address:
            loc["address"] = _nfc(m.address)
        return "location", loc
    if isinstance(m, Contacts):
        return "contacts", [dict(c) for c in m.contacts]
    if isinstance(m, Template):
        template: dict[str, Any] = {"name": m.name, "language": {"code": m.language}}
        if m.components:
            template["components"] = [dict(c) for c in m.components]
        return "template", template
    return "reaction", {"message_id": m.message_id, "emoji": m.emoji}


def _interactive_part(
    kind: str, body: str, header: str | None, footer: str | None, action: dict[str, Any]
) -> dict[str, Any]:
    part: dict[str, Any] = {"type": kind}
    if header:
        part["header"] = {"type": "text", "text": _nfc(header)}
    part["body"] = {"text": _nfc(body)}
    if footer:
        part["footer"] = {"text": _nfc(footer)}
    part["action"] = action
    return part


def _nfc(text: str) -> str:
    """Vietnamese typed on some keyboards arrives decomposed (NFD); WhatsApp shows NFC best and counts it shorter."""
    return unicodedata.normalize("NFC", text)


def mark_read_body(mark: MarkRead) -> dict[str, Any]:
    """The JSON body that marks a message read (and shows the typing indicator)."""
    body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": mark.message_id}
    if mark.typing:
        body["typing_indicator"] = {"type": "text"}
    return body


def shown(body: dict[str, Any]) -> str:
    """What the customer sees of a Graph message body, on one line: its text, or its kind in brackets."""
    kind = body.get("type", "?")
    part = body.get(kind)
    if kind == "text" and isinstance(part, dict):
        return str(part.get("body", ""))
    if kind == "interactive" and isinstance(part, dict):
        return str((part.get("body") or {}).get("text", "")) or f"[{part.get('type', kind)}]"
    if kind == "template" and isinstance(part, dict):
        return f"[template {part.get('name', '')}]"
    return f"[{kind}]"


def template_with(name: str, language: str, parameters: list[str]) -> Template:
    """A template whose body placeholders {{1}}, {{2}}, ... take `parameters` in order (campaigns, the API)."""
    body = [{"type": "text", "text": p} for p in parameters]
    return Template(name, language, ({"type": "body", "parameters": body},) if body else ())
