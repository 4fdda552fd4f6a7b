"""How a bench customer walks the shipped demo shop: what to send next, given the bot's last message.

The choice is read from what the bot actually sent (the option ids and the question it asked), so the
walk follows the flows as they are, whatever ids the flow loader gives to options.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .fakegraph import Reply

# Menu option titles and how often a customer picks them; 0 = never (a handoff ends the bot's replies).
WEIGHTS = {
    "xem sản phẩm": 30, "đặt hàng": 30, "tra cứu đơn hàng": 10, "cửa hàng ở đâu?": 8, "hỏi đáp": 12,
    "gặp nhân viên": 0, "english / tiếng việt": 0, "quay lại": 1, "đặt ngay": 8, "xem món khác": 1,
    "menu chính": 1, "có": 8, "không": 2,
}

# (words in the bot's question, what the customer types); Vietnamese and English prompts.
ANSWERS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("mấy phần", "từ 1 đến 50", "how many", "from 1 to 50"), ("1", "2", "3", "5", "12")),
    (("địa chỉ", "deliver", "full address"), ("12 Lê Lợi, Quận 1, TP.HCM", "45 Nguyễn Huệ, phường Bến Nghé")),
    (("số điện thoại", "phone number"), ("0912 345 678", "+84 903 123 456")),
    (("mã đơn", "order code"), ("DH12345", "DH67890", "DH24680")),
    (("hỏi gì", "ask me anything"), ("giá bao nhiêu vậy?", "giao hàng mất bao lâu?", "đơn DH13579 tới đâu rồi")),
)


GREETINGS = ("hi", "xin chào", "Chào shop")


@dataclass(frozen=True, slots=True)
class Tap:
    """A button or list-row tap."""

    kind: str  # "button_reply" or "list_reply"
    id: str
    title: str
    description: str
    context: str  # the wamid of the bot message tapped


@dataclass(frozen=True, slots=True)
class Typed:
    """A typed text message."""

    body: str


Move = Tap | Typed


def next_move(last: Reply | None, rng: random.Random) -> Move:
    """The customer's next message after the bot's latest one (None: the bot has said nothing yet)."""
    if last is None:
        return Typed(rng.choice(GREETINGS))
    if last.options and last.kind in ("button", "list"):
        weights = [WEIGHTS.get(title.lower(), 3) for _, title, _ in last.options]
        if any(weights):
            (oid, title, desc), = rng.choices(last.options, weights=weights)
            kind = "button_reply" if last.kind == "button" else "list_reply"
            return Tap(kind, oid, title, desc, last.wamid)
    text = last.text.lower()
    for words, answers in ANSWERS:
        if any(w in text for w in words):
            return Typed(rng.choice(answers))
    # an ending, a notice, or a reply the walk does not know: start over from the menu
    return Typed("menu")
