"""The pure step function: (bot, state, event) -> (new state, replies, effects).

It never sends, stores, sleeps or reads the clock: the caller passes `now`, performs the
effects (an HTTP call, opening a handoff) and feeds their results back as events.
The steps themselves run in `turn.py`; this module decides what an event means.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from wabot.engine import answering, handoffs, schedule, timers
from wabot.engine.answering import wanted_media
from wabot.engine.events import (
    Answered,
    Effect,
    Event,
    Fetched,
    HandoffOpened,
    HttpCall,
    HttpResult,
    Incoming,
    MediaRule,
    Resume,
    StartFlow,
    TakeOver,
    Tick,
    TimerFired,
)
from wabot.engine.turn import KEPT_ON_END, Turn
from wabot.flows.model import Bot, Handoff, Jump, ReplyRef, TextSpec, Trigger
from wabot.state import HANDOFF, HTTP, IDLE, WAITING, CancelTimers, SetTimer, State
from wabot.templates import Renderer
from wabot.text import fold
from wabot.whatsapp import inbound, outbound
from wabot.whatsapp.fitting import fit_all

__all__ = [
    "Answered", "CancelTimers", "Effect", "Event", "Fetched", "HandoffOpened", "HttpCall", "HttpResult", "Incoming",
    "MediaRule", "Outcome", "Resume", "SetTimer", "StartFlow", "TakeOver", "Tick", "TimerFired", "advance",
    "named_reply", "opening", "reengage", "wanted_media",
]

log = logging.getLogger(__name__)

IGNORED = (inbound.Reaction, inbound.System)  # no answer expected: they neither advance nor restart


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State
    replies: tuple[outbound.Outgoing, ...] = ()
    effects: tuple[Effect, ...] = ()
    finished: tuple[tuple[str, dict[str, Any]], ...] = ()  # (flow, its variables) for each flow that ended
    note: str = ""  # what a due timer did (TimerFired), for the history


def advance(
    bot: Bot,
    renderer: Renderer,
    state: State | None,
    event: Event,
    *,
    customer: inbound.Customer,
    now: float,
) -> Outcome:
    """Run the conversation from `state` on `event` until it waits for the customer, an effect or a timer."""
    outcome = _advance(bot, renderer, state, event, customer=customer, now=now)
    message = event.message if isinstance(event, Incoming) else None
    answered = message is not None and not isinstance(message.content, IGNORED)
    stopped = answered and message is not None and handoffs.is_stop(bot, message)
    effects = timers.settle(bot, state, outcome.state, outcome.effects, answered=answered, stopped=stopped, now=now)
    return outcome if effects == outcome.effects else replace(outcome, effects=effects)


def _advance(
    bot: Bot,
    renderer: Renderer,
    state: State | None,
    event: Event,
    *,
    customer: inbound.Customer,
    now: float,
) -> Outcome:
    state = state or State()
    if isinstance(event, TakeOver):
        if state.status == HANDOFF:
            return Outcome(state)
        return Outcome(state.with_(status=HANDOFF, handoff_at=now), effects=(HandoffOpened(event.reason),))
    if isinstance(event, Resume) and state.status == HANDOFF and not state.flow:
        return Outcome(state.with_(status=IDLE))  # taken over between conversations: the next message starts one
    if isinstance(event, TimerFired):  # before the check below: a timer of a step that is gone does nothing
        return _timer(Turn(bot, renderer, state, customer=customer, now=now), state, event, now=now)
    if state.status != IDLE and _lost(bot, state):
        # the flows were edited under this conversation (hot reload): start over, and say so
        log.warning("step %s/%s no longer exists after a flow change; the customer starts over", state.flow, state.step)
        state = State(vars={k: v for k, v in state.vars.items() if k in KEPT_ON_END}, last_seen=state.last_seen)
        turn = Turn(bot, renderer, state, customer=customer, now=now)
        turn.say(RESTARTED)
        if isinstance(event, Incoming) and not isinstance(event.message.content, IGNORED):
            later = _incoming(bot, renderer, state, event.message, customer=customer, now=now)
            return replace(later, replies=fit_all(turn.replies) + later.replies)
        turn.start()
        return _outcome(turn, last_seen=state.last_seen)
    if isinstance(event, Incoming):
        return _incoming(bot, renderer, state, event.message, customer=customer, now=now, fetched=event.fetched)
    if isinstance(event, StartFlow):
        return _start_flow(bot, renderer, state, event, customer=customer, now=now)
    turn = Turn(bot, renderer, state, customer=customer, now=now)
    if isinstance(event, HttpResult):
        turn.http_result(event)
    elif isinstance(event, Tick):
        if handoffs.expired(bot, state, now):
            handoffs.expire(turn)
    elif isinstance(event, Answered):
        if state.status == HANDOFF:
            turn.handoff_at = now
    elif state.status == HANDOFF and _at_handoff(turn):
        turn.next()  # Resume: on with the steps after the handoff, or back to the caller
    elif state.status == HANDOFF:
        turn.run(turn.position())  # Resume after a take-over mid-flow: the bot asks its question again
    else:
        log.info("the conversation was given back to the bot but no person had it; nothing to do")
    return _outcome(turn, last_seen=state.last_seen)


def _at_handoff(turn: Turn) -> bool:
    step = turn.current()
    return step is not None and isinstance(step.action, Handoff)


def _lost(bot: Bot, state: State) -> bool:
    flow = bot.flows.get(state.flow)
    return flow is None or flow.index(state.step) < 0


RESTARTED = (
    TextSpec({
        "vi": "Xin lỗi, nội dung trò chuyện vừa được cập nhật nên mình bắt đầu lại từ đầu nhé.",
        "en": "Sorry, this conversation was just updated, so we are starting again from the beginning.",
    }),
)


def _incoming(
    bot: Bot, renderer: Renderer, state: State, message: inbound.Message, *, customer: inbound.Customer, now: float,
    fetched: Fetched | None = None,
) -> Outcome:
    if isinstance(message.content, IGNORED):
        return Outcome(state.with_(last_seen=now))
    turn = Turn(bot, renderer, state, customer=customer, now=now, message=message)
    turn.fetched = fetched
    silence = now - state.last_seen > schedule.patience(bot, state)  # a question that reminds waits longer
    trigger = _trigger(bot, message)
    if state.status == HANDOFF:
        why = handoffs.leaving(bot, turn, state, message, now)
        if why is None:
            return Outcome(state.with_(last_seen=now))  # a person has the conversation: the bot stays silent
        if why == "back" and trigger is None:
            turn.next()  # as if a person gave the conversation back
            return _outcome(turn, last_seen=now)
        if why == "expired":
            handoffs.expire(turn, quietly=silence)  # after a long silence, welcome back says enough
            if silence:
                turn.say(bot.welcome_back)
        else:
            turn.finish()
    elif turn.status != IDLE and silence:
        turn.finish()
        turn.finished.clear()  # abandoned, not finished: no flow_finished event for it
        turn.say(bot.welcome_back)
    if handoffs.is_stop(bot, message):
        # the server has recorded the opt-out; it is confirmed by the author's trigger or, without one, here
        if trigger is not None:
            turn.leap(trigger.jump, calls=trigger.jump.kind == "call")
        else:
            turn.finish()
            turn.say(handoffs.OPTED_OUT)
        return _outcome(turn, last_seen=now)
    step = turn.current() if turn.status == WAITING else None
    listens = step is None or getattr(step.action, "triggers", True)
    if trigger and listens and not (step and answering.accepts(turn, step, message)):
        turn.leap(trigger.jump, calls=trigger.jump.kind == "call" or trigger.resume)
    elif step is not None:
        answering.answer(turn, message)
    elif turn.status == HTTP and turn.position():
        turn.run(turn.position())  # the http result was lost (a crash): ask again
    elif not answering.older_menu(turn, message):  # a tap on a menu of a finished conversation still counts
        turn.start()
    return _outcome(turn, last_seen=now)


def _start_flow(
    bot: Bot, renderer: Renderer, state: State, event: StartFlow, *, customer: inbound.Customer, now: float
) -> Outcome:
    """The business starts a flow: whatever ran before is left behind, as if the customer typed a trigger word."""
    if state.status == HANDOFF or event.flow not in bot.flows:
        log.info("flow %s not started: %s", event.flow, "a person has the conversation" if state.status == HANDOFF
                 else "there is no such flow")
        return Outcome(state)
    turn = Turn(bot, renderer, state.with_(vars={**state.vars, **event.vars}), customer=customer, now=now)
    turn.leap(Jump("goto", event.flow), calls=False)
    return _outcome(turn, last_seen=now)  # the session clock starts now, as if the customer had written


def _timer(turn: Turn, state: State, event: TimerFired, *, now: float) -> Outcome:
    """A due timer; outside the 24-hour window what it says goes as the flow's opening template, or not at all."""
    fired = timers.fire(turn, state, event)
    note = fired.note
    if turn.replies and not event.window_open:
        if fired.opening is None:
            log.warning("a %s timer of %s/%s came due outside the 24-hour window; nothing was sent: give the flow "
                        "an approved template with 'opens_with:'", event.kind, event.flow, event.step)
            return Outcome(state, note=f"{note}; {timers.CLOSED}")
        turn.replies[:] = [fired.opening]
        note += "; sent as the opens_with template (the 24-hour window was closed)"
    outcome = _outcome(turn, last_seen=now if fired.spoke else state.last_seen)  # as if the customer had written
    return replace(outcome, note=note)


def _trigger(bot: Bot, message: inbound.Message) -> Trigger | None:
    typed = fold(message.text)
    if not typed:
        return None
    return next((t for t in bot.triggers if any(typed == fold(w) for w in t.words)), None)


def _outcome(turn: Turn, *, last_seen: float) -> Outcome:
    # fitted here, so the server, `wabot chat` and `wabot test` all see the very messages that are sent
    return Outcome(
        turn.state(last_seen=last_seen), fit_all(turn.replies), tuple(turn.effects), tuple(turn.finished)
    )


REENGAGE = "reengage"  # the reply sent when the 24-hour customer-service window has closed


def opening(
    bot: Bot, renderer: Renderer, flow: str, variables: dict[str, Any], *, customer: inbound.Customer, now: float
) -> outbound.Template | None:
    """The flow's `opens_with` template written with `variables` (a flow the business starts); None without one."""
    spec = bot.flows[flow].opens_with if flow in bot.flows else None
    if spec is None:
        return None
    message = Turn(bot, renderer, State(vars=variables), customer=customer, now=now).writer.message(spec)
    return message if isinstance(message, outbound.Template) else None


def reengage(
    bot: Bot, renderer: Renderer, state: State | None, *, customer: inbound.Customer, now: float
) -> outbound.Template | None:
    """The `reengage` reply for a customer whose 24-hour window has closed; None unless it is a template."""
    if REENGAGE not in bot.replies:
        return None
    turn = Turn(bot, renderer, state or State(), customer=customer, now=now)
    message = turn.writer.message(ReplyRef(REENGAGE))
    if not isinstance(message, outbound.Template):
        log.error("the reply %r must be an approved template message (template: ...); it was not sent", REENGAGE)
        return None
    return message


def named_reply(
    bot: Bot, renderer: Renderer, state: State | None, name: str, *, customer: inbound.Customer, now: float
) -> outbound.Outgoing | None:
    """The reply `name` of the `replies:` section, written for this customer (a person sends it from the console)."""
    if name not in bot.replies:
        return None
    return Turn(bot, renderer, state or State(), customer=customer, now=now).writer.message(ReplyRef(name))
