"""Typed outgoing messages, WhatsApp's limits on them, and their Graph API request bodies.

The engine produces these values; the outbox stores `to_body(...)` and the Graph
client posts it. `check_limits` says, in plain words, which limit a message broke.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import LimitError


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

    kind: str
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


def check_limits(message: Outgoing) -> None:
    """Raise LimitError naming the field and the limit if `message` breaks a WhatsApp limit."""
    raise NotImplementedError  # filled in by the outbound work
    _ = LimitError


def to_body(recipient: Recipient, message: Outgoing) -> dict[str, Any]:
    """The JSON body of `POST /{version}/{phone-number-id}/messages` for this message."""
    raise NotImplementedError  # filled in by the outbound work


def mark_read_body(mark: MarkRead) -> dict[str, Any]:
    """The JSON body that marks a message read (and shows the typing indicator)."""
    raise NotImplementedError  # filled in by the outbound work
