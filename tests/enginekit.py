"""A tiny harness for engine tests: build a Bot (from YAML text or model objects) and chat with it."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests import bot_settings, configured_bot
from wabot.engine import advance
from wabot.flows import model
from wabot.state import State
from wabot.templates import Renderer
from wabot.whatsapp import inbound, outbound

START = 1_780_000_000.0  # a fixed "now" (2026-05-28); tests move it forward explicitly
CUSTOMER = inbound.Customer(wa_id="84912345678", name="Lan")


def load(tmp_path: Path, source: str, *, env: Mapping[str, str] | None = None, **settings: Any) -> model.Bot:
    """A Bot from one YAML flow file (through the real loader)."""
    path = tmp_path / "flows.yaml"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return configured_bot(bot_settings(path, **settings), environ=env)


def text(source: str) -> model.Localized:
    return {model.ANY: source}


def say(*texts: str) -> model.Say:
    return model.Say(tuple(model.TextSpec(text(t)) for t in texts))


def flow(name: str, *steps: model.Action | tuple[str, model.Action]) -> model.Flow:
    """A flow from actions; `(key, action)` gives a step an id."""
    made = []
    for i, item in enumerate(steps, 1):
        key, action = item if isinstance(item, tuple) else (f"#{i}", item)
        made.append(model.Step(key, action, model.Where("test.yaml", i), has_id=isinstance(item, tuple)))
    return model.Flow(name, tuple(made), model.Where("test.yaml", 1))


def build(*flows: model.Flow, **fields: Any) -> model.Bot:
    """A Bot straight from model objects (no loader involved)."""
    return model.Bot(flows={f.name: f for f in flows}, replies=fields.pop("replies", {}), **fields)


class Chat:
    """One customer talking to a bot; every call returns the replies of that turn."""

    def __init__(self, bot: model.Bot, *, now: float = START, customer: inbound.Customer = CUSTOMER) -> None:
        self.bot = bot
        self.renderer = Renderer(timezone=bot.timezone)
        self.now = now
        self.customer = customer
        self.state: State | None = None
        self.outcome = advance.Outcome(State())
        self.count = 0

    def send(self, body: str) -> list[outbound.Outgoing]:
        return self.message("text", inbound.Text(body))

    def tap(self, id_: str, title: str = "") -> list[outbound.Outgoing]:
        return self.message("interactive", inbound.Reply("button_reply", id_, title or id_))

    def message(self, type_: str, content: inbound.Content) -> list[outbound.Outgoing]:
        self.count += 1
        message = inbound.Message(
            f"wamid.{self.count}", self.customer, "1000", int(self.now), type_, content
        )
        return self.feed(advance.Incoming(message))

    def feed(self, event: advance.Event) -> list[outbound.Outgoing]:
        self.outcome = advance.advance(self.bot, self.renderer, self.state, event, customer=self.customer, now=self.now)
        self.state = State.from_json(self.outcome.state.to_json())  # what the store would keep
        return list(self.outcome.replies)

    @property
    def effects(self) -> tuple[advance.Effect, ...]:
        return self.outcome.effects

    def wait(self, seconds: float) -> None:
        self.now += seconds


def bodies(replies: Sequence[outbound.Outgoing]) -> list[str]:
    """The visible text of each reply (body, caption, or the kind of message)."""
    out = []
    for reply in replies:
        body = getattr(reply, "body", None) or getattr(reply, "caption", None)
        out.append(body if body is not None else type(reply).__name__)
    return out


def choices(reply: outbound.Outgoing) -> list[tuple[str, str]]:
    """(id, title) of the buttons or rows of an interactive reply."""
    if isinstance(reply, outbound.Buttons):
        return [(b.id, b.title) for b in reply.buttons]
    if isinstance(reply, outbound.ListMessage):
        return [(r.id, r.title) for s in reply.sections for r in s.rows]
    raise AssertionError(f"not an interactive message: {reply!r}")
