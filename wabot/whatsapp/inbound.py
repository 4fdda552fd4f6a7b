"""Meta's webhook JSON -> typed events: messages, statuses and out-of-band errors.

The types below are the contract with the rest of wabot; `wabot.whatsapp.parse.parse_webhook` is
the only place that reads Meta's raw JSON. Anything we do not recognise becomes `Unsupported`,
never an exception and never a silent drop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

log = logging.getLogger(__name__)


# --- who ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Customer:
    """The person writing to us.

    `wa_id` is the phone number (digits) when Meta sends one; `user_id` is the
    business-scoped user id (Meta's 2026 change for customers with a username).
    At least one of the two is set. `key` is what wabot keys state by.
    """

    wa_id: str | None
    user_id: str | None = None
    name: str | None = None
    username: str | None = None

    @property
    def key(self) -> str:
        return self.wa_id or self.user_id or ""


# --- message contents -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    body: str


@dataclass(frozen=True, slots=True)
class Reply:
    """A tap: interactive button_reply / list_reply, or a template quick-reply (`button`).

    `kind` is "button_reply", "list_reply" or "quick_reply"; `id` is the id we gave the
    button or row (the template button's payload for quick replies).
    """

    kind: str
    id: str
    title: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class FlowReply:
    """interactive nfm_reply: a WhatsApp Flow was completed; `response` is the parsed response_json."""

    name: str
    body: str
    response: dict[str, Any]


MediaKind = Literal["image", "video", "audio", "document", "sticker"]
MEDIA_KINDS: tuple[MediaKind, ...] = get_args(MediaKind)  # the one home of WhatsApp's media message types


@dataclass(frozen=True, slots=True)
class Media:
    """image, audio, video, document or sticker (`kind`)."""

    kind: MediaKind
    id: str
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    url: str | None = None
    voice: bool = False
    animated: bool = False


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class SharedContacts:
    """vCard-like contact cards, kept as Meta sent them."""

    contacts: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Reaction:
    """`emoji` is "" when the customer removed a reaction."""

    message_id: str
    emoji: str


@dataclass(frozen=True, slots=True)
class OrderItem:
    product_retailer_id: str
    quantity: int
    item_price: float
    currency: str


@dataclass(frozen=True, slots=True)
class Order:
    catalog_id: str
    text: str
    items: tuple[OrderItem, ...]


@dataclass(frozen=True, slots=True)
class System:
    """user_changed_number (new `wa_id`) or customer_identity_changed."""

    type: str
    body: str
    new_wa_id: str | None = None


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A type we do not handle (or Meta could not deliver); `type` is what Meta called it."""

    type: str
    errors: tuple[ErrorInfo, ...] = ()


Content = (
    Text | Reply | FlowReply | Media | Location | SharedContacts | Reaction | Order | System | Unsupported
)


# --- message envelope -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """What an inbound message replies to, or that it was forwarded."""

    message_id: str | None = None
    from_: str | None = None
    forwarded: bool = False
    frequently_forwarded: bool = False
    referred_product: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Referral:
    """Click-to-WhatsApp ad or post the customer came from."""

    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    headline: str | None = None
    body: str | None = None
    ctwa_clid: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One inbound message. `type` is Meta's type string ("text", "interactive", "image", ...)."""

    id: str
    customer: Customer
    phone_number_id: str
    timestamp: int
    type: str
    content: Content
    context: Context | None = None
    referral: Referral | None = None

    @property
    def text(self) -> str:
        """What the customer "said" as plain text: body, tapped title, or media caption."""
        c = self.content
        if isinstance(c, Text):
            return c.body
        if isinstance(c, Reply):
            return c.title
        if isinstance(c, Media):
            return c.caption or ""
        if isinstance(c, Order):
            return c.text
        return ""


# --- statuses and errors --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """One error object as Meta sends it in webhooks (statuses, messages or value.errors)."""

    code: int
    title: str = ""
    message: str = ""
    details: str = ""


@dataclass(frozen=True, slots=True)
class Status:
    """Delivery receipt for a message we sent: sent, delivered, read, played or failed."""

    id: str
    status: str
    timestamp: int
    recipient_id: str
    phone_number_id: str
    errors: tuple[ErrorInfo, ...] = ()
    biz_opaque_callback_data: str | None = None
    pricing_category: str | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """Everything one webhook POST carried, in the order Meta listed it."""

    messages: tuple[Message, ...] = ()
    statuses: tuple[Status, ...] = ()
    errors: tuple[ErrorInfo, ...] = ()
    ignored: tuple[str, ...] = field(default=())  # fields we do not handle, e.g. "account_update"
    rejected: tuple[str, ...] = field(default=())  # items skipped as unreadable, each with where and why
