"""While a person has the conversation: when a handoff ends without one (issue 11, bug 1).

A handoff must never mute a customer for ever. It ends by itself when no person answered
within `bot.handoff_timeout` (the customer is told), when the customer sends a stop word
(the opt-out is confirmed) or one of the handoff step's `back` words.
"""

from __future__ import annotations

from typing import Literal

from wabot.engine.turn import Turn
from wabot.flows import model
from wabot.flows.model import Bot, TextSpec
from wabot.state import HANDOFF, State
from wabot.text import fold
from wabot.whatsapp import inbound

Leaving = Literal["expired", "stop", "back"]

EXPIRED = (
    TextSpec({
        "vi": "Xin lỗi bạn, hiện chưa có nhân viên nào trả lời được. Bạn cứ nhắn tiếp, mình sẽ hỗ trợ bạn ngay.",
        "en": "Sorry, nobody from our team could answer in time. Write again and the bot will help you right away.",
    }),
)
OPTED_OUT = (
    TextSpec({
        "vi": "Đã hủy đăng ký: bạn sẽ không nhận tin nhắn chủ động từ chúng tôi nữa.",
        "en": "You are unsubscribed: we will not message you first any more.",
    }),
)


def expired(bot: Bot, state: State, now: float) -> bool:
    """Whether the handoff in `state` has waited longer than `bot.handoff_timeout` for a person."""
    return state.status == HANDOFF and now - state.handoff_at > bot.handoff_timeout


def is_stop(bot: Bot, message: inbound.Message) -> bool:
    typed = fold(message.text)
    return bool(typed) and typed in bot.stop_words


def leaving(bot: Bot, turn: Turn, state: State, message: inbound.Message, now: float) -> Leaving | None:
    """Why this message ends the handoff, or None: the bot stays silent and a person answers."""
    if expired(bot, state, now):
        return "expired"
    if is_stop(bot, message):
        return "stop"
    step = turn.current()
    typed = fold(message.text)
    if step is not None and isinstance(step.action, model.Handoff) and typed and typed in step.action.back:
        return "back"
    return None


def expire(turn: Turn, *, quietly: bool = False) -> None:
    """End a handoff nobody answered: tell the customer (unless `quietly`), then the conversation is over."""
    if not quietly:
        step = turn.current()
        said = step.action.expired if step is not None and isinstance(step.action, model.Handoff) else ()
        turn.say(said or EXPIRED)
    turn.finish()
