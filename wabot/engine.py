"""The pure step function: (bot, state, event) -> (new state, replies, effects).

It never sends, stores, sleeps or reads the clock: the caller passes `now`, performs the
effects (an HTTP call, opening a handoff) and feeds their results back as events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import inbound, outbound
from .flows.model import Bot
from .state import State
from .templates import Renderer


@dataclass(frozen=True, slots=True)
class Incoming:
    """A customer's message."""

    message: inbound.Message


@dataclass(frozen=True, slots=True)
class HttpResult:
    """The answer to an `HttpCall` effect: `ok` False on timeout, connection error or non-2xx."""

    ok: bool
    status: int = 0
    data: Any = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class Resume:
    """A person gave the conversation back to the bot (end of a handoff)."""


Event = Incoming | HttpResult | Resume


@dataclass(frozen=True, slots=True)
class HttpCall:
    """Perform this request, then call `advance` with an HttpResult."""

    method: str
    url: str
    headers: dict[str, str]
    body: Any
    timeout: float


@dataclass(frozen=True, slots=True)
class HandoffOpened:
    """The customer now waits for a person."""

    reason: str


Effect = HttpCall | HandoffOpened


@dataclass(frozen=True, slots=True)
class Outcome:
    state: State
    replies: tuple[outbound.Outgoing, ...] = ()
    effects: tuple[Effect, ...] = ()


def advance(
    bot: Bot,
    renderer: Renderer,
    state: State | None,
    event: Event,
    *,
    customer: inbound.Customer,
    now: float,
) -> Outcome:
    """Run the conversation from `state` on `event` until it waits for the customer or an effect."""
    raise NotImplementedError  # filled in by the engine work
