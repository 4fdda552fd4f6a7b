"""Performing the engine's effects: http steps and handoffs, for the server and the author tools alike.

The engine asks for an http call as a value; this module makes the request, feeds the answer
back to the engine, and repeats (bounded) until a turn has no more calls to make.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from wabot.engine import advance
from wabot.state import State
from wabot.whatsapp import outbound

__all__ = ["MAX_EFFECT_ROUNDS", "Effected", "HttpAnswer", "perform", "real_http"]

MAX_EFFECT_ROUNDS = 20  # http steps in a row within one turn

HttpAnswer = Callable[[advance.HttpCall], Awaitable[advance.HttpResult]]
Step = Callable[[State, advance.Event], advance.Outcome]


@dataclass(frozen=True, slots=True)
class Effected:
    """One turn with its effects performed: every reply, the final state, the calls made, a handoff's reason."""

    replies: tuple[outbound.Outgoing, ...]
    state: State
    calls: tuple[advance.HttpCall, ...] = ()
    handoff: str | None = None
    finished: tuple[tuple[str, dict[str, Any]], ...] = ()  # flows that ended in this turn, with their variables


async def perform(outcome: advance.Outcome, *, step: Step, http: HttpAnswer) -> Effected:
    """Make the http calls `outcome` asks for, one at a time, feeding each answer back through `step`."""
    replies = list(outcome.replies)
    calls: list[advance.HttpCall] = []
    handoff: str | None = None
    finished = list(outcome.finished)
    for _ in range(MAX_EFFECT_ROUNDS):
        for effect in outcome.effects:
            if isinstance(effect, advance.HandoffOpened):
                handoff = effect.reason or "no reason given"
        pending = [e for e in outcome.effects if isinstance(e, advance.HttpCall)]
        if not pending:
            break
        calls.append(pending[0])
        outcome = step(outcome.state, await http(pending[0]))
        replies.extend(outcome.replies)
        finished.extend(outcome.finished)
    return Effected(tuple(replies), outcome.state, tuple(calls), handoff, tuple(finished))


async def real_http(session: aiohttp.ClientSession, call: advance.HttpCall) -> advance.HttpResult:
    """Perform an http step's request (errors and non-2xx answers become a failed HttpResult, never raise)."""
    try:
        async with session.request(
            call.method, call.url, headers=call.headers, json=call.body,
            timeout=aiohttp.ClientTimeout(total=call.timeout),
        ) as resp:
            text = await resp.text()
            try:
                data: Any = json.loads(text) if text else None
            except ValueError:
                data = text
            if resp.status >= 400:
                return advance.HttpResult(False, resp.status, data, f"the server answered {resp.status}")
            return advance.HttpResult(True, resp.status, data)
    except TimeoutError:
        return advance.HttpResult(False, error=f"no answer within {call.timeout:g} seconds")
    except aiohttp.ClientError as exc:
        return advance.HttpResult(False, error=f"could not connect: {exc.__class__.__name__}")
    except ValueError as exc:
        return advance.HttpResult(False, error=f"invalid request: {exc}")
