"""Timers in a conversation: what a due timer does, and which timers a turn cancels or sets. Pure, like the rest.

A question or menu with `remind`/`timeout` sets its timers when it is asked (turn.py). Any answer of the
customer, and any turn that leaves the step, cancels them; a wrong answer asked again sets them afresh. A
wait step's timer carries the flow's variables and its way back: it survives the customer's messages (only
an opt-out cancels it) and, when due, the flow goes on after the wait step — at once when the conversation
is free, or first, like a called flow, when the customer is in another one (they come back to it after).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from wabot.engine import schedule
from wabot.engine.events import Effect, TimerFired
from wabot.engine.turn import Turn
from wabot.flows import model
from wabot.flows.model import Bot
from wabot.state import HANDOFF, IDLE, TIMER_KINDS, WAITING, CancelTimers, Frame, SetTimer, State
from wabot.whatsapp import outbound

log = logging.getLogger(__name__)

PUT_OFF = 600.0  # seconds a wait that ends during a handoff is put off, again until a person gives the customer back
CLOSED = "not sent: the customer last wrote more than 24 hours ago and the flow names no opens_with template"


@dataclass(frozen=True, slots=True)
class Fired:
    """What a due timer did: a line for the history, whether the bot spoke or moved, the flow's opening template."""

    note: str
    spoke: bool = False
    opening: outbound.Outgoing | None = None


def fire(turn: Turn, state: State, event: TimerFired) -> Fired:
    """Do what the due timer says, on `turn` (made from `state`)."""
    if event.kind == "wait":
        return _wait_over(turn, state, event)
    if (state.status, state.flow, state.step) != (WAITING, event.flow, event.step):
        return Fired("ignored: the conversation had moved on")
    action = schedule.timed(turn.current())
    if action is None:
        return Fired("ignored: the step no longer has a reminder or a timeout (the flows changed)")
    opening = _opening(turn, event.flow)
    if event.kind == "remind":
        if action.remind is None:
            return Fired("ignored: the step no longer reminds (the flows changed)")
        if action.remind.messages:
            turn.say(action.remind.messages)
        else:
            turn.prompt(action)
        if event.n < action.remind.times:
            turn.effects.append(SetTimer("remind", turn.now + action.remind.after, event.flow, event.step, event.n + 1))
        return Fired(f"reminder {event.n} of {action.remind.times} said", True, opening)
    if action.timeout is None:
        return Fired("ignored: the step no longer times out (the flows changed)")
    turn.say(action.timeout.messages)
    turn.attempts = turn.misses = turn.page = 0
    turn.follow(action.timeout.jump, waiting=False)
    return Fired(f"no answer in {action.timeout.written}: went to {action.timeout.jump}", True, opening)


def _wait_over(turn: Turn, state: State, event: TimerFired) -> Fired:
    flow = turn.bot.flows.get(event.flow)
    index = flow.index(event.step) if flow else -1
    if flow is None or index < 0 or not isinstance(flow.steps[index].action, model.Wait):
        log.warning("a wait in %s/%s ended, but that step no longer exists; the flow does not go on",
                    event.flow, event.step)
        return Fired("ignored: the wait step no longer exists (the flows changed)")
    if state.status == HANDOFF:
        turn.effects.append(SetTimer("wait", turn.now + PUT_OFF, event.flow, event.step, event.n, event.data))
        return Fired(f"put off {PUT_OFF / 60:g} minutes: a person has the conversation")
    data = event.data or {}
    back = [Frame(str(f[0]), str(f[1]), bool(f[2])) for f in data.get("stack", ())]
    if turn.status != IDLE and turn.flow in turn.bot.flows:  # busy: this first, then back to where they were
        turn.stack.append(Frame(turn.flow, turn.step, again=True, interrupted=True))
    turn.stack.extend(back)
    turn.vars.update(data.get("vars", {}))
    turn.attempts = turn.misses = turn.page = 0
    opening = _opening(turn, event.flow)
    turn.run((flow, index + 1))
    return Fired("the wait ended: the flow went on", True, opening)


def _opening(turn: Turn, flow: str) -> outbound.Outgoing | None:
    """The flow's `opens_with` template, written with the variables as they are now (before the flow goes on)."""
    spec = turn.bot.flows[flow].opens_with if flow in turn.bot.flows else None
    return turn.writer.message(spec) if spec is not None else None


def settle(bot: Bot, before: State | None, after: State, effects: Sequence[Effect], *, answered: bool,
           stopped: bool, now: float) -> tuple[Effect, ...]:
    """The turn's effects with the timers it cancels first and the ones it sets afresh.

    `answered`: the customer wrote (a reaction does not count); `stopped`: with a stop word (every timer goes).
    """
    if stopped:
        return (CancelTimers(TIMER_KINDS, "opted out"), *effects)
    old = schedule.waiting_at(bot, before)
    if old is None:
        return tuple(effects)
    new = schedule.waiting_at(bot, after)
    armed = any(isinstance(e, SetTimer) and e.kind != "wait" and e.n == 1 for e in effects)
    if not (answered or new != old or armed):
        return tuple(effects)  # a reminder at the same step: its timeout still runs
    cancel = CancelTimers(("remind", "timeout"), "answered" if answered else "left the step")
    again: list[SetTimer] = []
    if new is not None and not armed:  # asked again after a wrong answer: the silence restarts
        flow = bot.flows[new[0]]
        again = schedule.arm(new[0], flow.steps[flow.index(new[1])], now)
    return (cancel, *effects, *again)
