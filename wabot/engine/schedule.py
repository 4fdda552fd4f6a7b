"""When a step's timers are due: a question's reminder and timeout, a wait step's moment. Pure: `now` is given."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from wabot.dates import parse_moment
from wabot.flows import model
from wabot.flows.model import Bot, Step
from wabot.state import WAITING, SetTimer, State
from wabot.templates import Renderer

log = logging.getLogger(__name__)

Timed = model.Menu | model.Ask


def timed(step: Step | None) -> Timed | None:
    """The step's question or menu when it has a reminder or a timeout."""
    a = step.action if step is not None else None
    return a if isinstance(a, model.Menu | model.Ask) and (a.remind or a.timeout) else None


def waiting_at(bot: Bot, state: State | None) -> tuple[str, str] | None:
    """(flow, step) when the conversation waits for an answer at a step with a reminder or a timeout."""
    if state is None or state.status != WAITING:
        return None
    flow = bot.flows.get(state.flow)
    index = flow.index(state.step) if flow else -1
    if flow is None or index < 0 or timed(flow.steps[index]) is None:
        return None
    return state.flow, state.step


def arm(flow: str, step: Step, now: float) -> list[SetTimer]:
    """The first reminder and the timeout of a question or menu just asked."""
    action = timed(step)
    if action is None:
        return []
    found = []
    if action.remind is not None:
        found.append(SetTimer("remind", now + action.remind.after, flow, step.key, 1))
    if action.timeout is not None:
        found.append(SetTimer("timeout", now + action.timeout.after, flow, step.key, 1))
    return found


def patience(bot: Bot, state: State) -> float:
    """How long a silence ends the conversation: the session timeout, or longer at a step that says it waits."""
    where = waiting_at(bot, state)
    if where is None:
        return bot.session_timeout
    action = timed(bot.flows[where[0]].steps[bot.flows[where[0]].index(where[1])])
    assert action is not None
    waits = [t.after for t in (action.remind, action.timeout) if t is not None]
    return max(bot.session_timeout, *waits)


def wait_due(wait: model.Wait, *, renderer: Renderer, context: dict[str, Any], now: float,
             where: str) -> float | None:
    """The unix time a wait step ends; None when its moment cannot be read (logged in plain words)."""
    if wait.seconds is not None:
        return now + wait.seconds
    assert wait.until is not None
    try:
        value = renderer.evaluate(wait.until, context)
    except Exception as exc:  # a template error the author must see, not a crash of the turn
        log.warning("%s: the wait's 'until: %s' could not be worked out (%s); going on at once", where, wait.until, exc)
        return None
    zone = renderer.zone
    today = renderer.now(now).date()
    moment = parse_moment(value, today=today) if value not in (None, "") else None
    if moment is None:
        log.warning("%s: the wait's 'until: %s' is %r, not a date or a date and time; going on at once",
                    where, wait.until, value)
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    moment = (moment.astimezone(zone) + timedelta(seconds=wait.shift))
    if wait.at is not None:
        hour, minute = (int(x) for x in wait.at.split(":"))
        moment = datetime(moment.year, moment.month, moment.day, hour, minute, tzinfo=zone)
    return moment.timestamp()
