"""One customer's conversation outside the server: the real engine, templates and state store.

`wabot chat` and `wabot test` talk to the bot through this; replies come back as values
and `describe` turns them into the lines a person reads in a terminal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wabot.db.store import Store
from wabot.engine import advance
from wabot.errors import LimitError
from wabot.flows.model import Bot
from wabot.server.effects import Effected, HttpAnswer, perform
from wabot.state import State
from wabot.templates import Renderer
from wabot.whatsapp import inbound, outbound, window

Turn = Effected  # what one customer message (or a hand-back) made the bot do


class Conversation:
    """Sends messages as one customer and keeps that customer's state in a Store, like the server does."""

    def __init__(
        self,
        bot: Bot,
        *,
        store: Store,
        customer: inbound.Customer,
        http: HttpAnswer,
        renderer: Renderer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot = bot
        self.store = store
        self.customer = customer
        self.http = http
        self.renderer = renderer or Renderer(timezone=bot.timezone)
        self.clock = clock
        self.sent = 0
        self.last_in: float | None = None  # when the customer last wrote: WhatsApp's 24-hour window runs from it

    async def send(self, content: inbound.Content) -> Turn:
        """The customer sends `content` (text, a tap, media, a location...)."""
        self.sent += 1
        self.last_in = self.clock()
        message = inbound.Message(
            id=f"wamid.local.{self.sent}", customer=self.customer, phone_number_id="local",
            timestamp=int(self.clock()), type=message_type(content), content=content,
        )
        return await self._turn(advance.Incoming(message))

    async def start(self, flow: str, variables: dict[str, Any]) -> Turn:
        """The shop's system starts `flow` for the customer with `variables` (the business API's flow start)."""
        return await self._turn(advance.StartFlow(flow, variables))

    async def resume(self) -> Turn:
        """A person gives the conversation back to the bot."""
        return await self._turn(advance.Resume())

    async def tick(self) -> Turn:
        """Time passed, as the server's periodic sweep sees it (a handoff nobody answered ends)."""
        return await self._turn(advance.Tick())

    async def fire_due(self, until: float, *, move: Callable[[float], None]) -> list[Turn]:
        """Fire, in order, the flow timers due by `until`, the clock moved to each one's time (what `wait` does)."""
        turns: list[Turn] = []
        while (due := await self.store.next_timer()) is not None and due <= until:
            move(due)
            claimed = await self.store.claim_timers(owner="local", now=due, until=due, limit=100)
            if not claimed:
                break
            for t in claimed:
                is_open = window.is_open(self.last_in, now=self.clock())
                event = advance.TimerFired(t.id, t.kind, t.flow, t.step, t.n, t.data, window_open=is_open)
                turns.append(await self._turn(event, fired=t.id))
        return turns

    async def timers(self) -> list[dict[str, Any]]:
        """This customer's timers, newest first."""
        return await self.store.timers(self.customer.key)

    async def state(self) -> State | None:
        return await self.store.load_state(self.customer.key)

    async def save(self, state: State, turn: Turn | None = None, *, fired: int | None = None) -> None:
        await self.store.finish_turn(seq=None, customer=self.customer.key, state=state, bodies=[],
                                     now=self.clock(), contact=self.customer, timers=turn.timers if turn else (),
                                     fired=None if fired is None else (fired, turn.note if turn else ""))

    async def reset(self) -> None:
        """Forget the conversation: the next message starts from the beginning."""
        await self.save(State())

    async def _turn(self, event: advance.Event, *, fired: int | None = None) -> Turn:
        turn = await perform(self._advance(await self.state(), event), step=self._advance, http=self.http)
        await self.save(turn.state, turn, fired=fired)
        return turn

    def _advance(self, state: State | None, event: advance.Event) -> advance.Outcome:
        return advance.advance(self.bot, self.renderer, state, event, customer=self.customer, now=self.clock())


def combine(turns: list[Turn]) -> Turn:
    """Several turns (timers that fired while time passed, then a tick) as one: every reply in order, the last state."""
    last = turns[-1]
    return Effected(
        tuple(r for t in turns for r in t.replies), last.state, tuple(c for t in turns for c in t.calls),
        next((t.handoff for t in reversed(turns) if t.handoff is not None), None),
        tuple(f for t in turns for f in t.finished), tuple(c for t in turns for c in t.timers),
        "; ".join(t.note for t in turns if t.note),
    )


def message_type(content: inbound.Content) -> str:
    """Meta's `type` string for a message carrying `content`."""
    if isinstance(content, inbound.Text):
        return "text"
    if isinstance(content, inbound.Reply):
        return "button" if content.kind == "quick_reply" else "interactive"
    if isinstance(content, inbound.Media):
        return content.kind
    if isinstance(content, inbound.SharedContacts):
        return "contacts"
    if isinstance(content, inbound.Unsupported):
        return content.type
    return type(content).__name__.lower()


def refused(reply: outbound.Outgoing) -> str | None:
    """Why the server would not send `reply` (the check it makes before queueing), or None."""
    try:
        outbound.check_limits(reply)
    except LimitError as err:
        return str(err)
    return None


def choices(reply: outbound.Outgoing) -> list[outbound.Button | outbound.Row]:
    """The buttons or list rows a reply offers, in the order shown (empty for other messages)."""
    if isinstance(reply, outbound.Buttons):
        return list(reply.buttons)
    if isinstance(reply, outbound.ListMessage):
        return [row for section in reply.sections for row in section.rows]
    return []


def body(reply: outbound.Outgoing) -> str | None:
    """The main text of a reply: a text's body, an interactive message's body, a media caption."""
    if isinstance(reply, outbound.Text | outbound.Buttons | outbound.ListMessage | outbound.CtaUrl):
        return reply.body
    if isinstance(reply, outbound.Media):
        return reply.caption
    return None


def describe(reply: outbound.Outgoing) -> list[str]:
    """A reply as the lines a person reads in a terminal; buttons and list rows are numbered."""
    if isinstance(reply, outbound.Text):
        return reply.body.splitlines() or [""]
    if isinstance(reply, outbound.Buttons | outbound.ListMessage):
        lines = [f"*{reply.header}*"] if reply.header else []
        lines += reply.body.splitlines()
        if isinstance(reply, outbound.ListMessage):
            lines.append(f"[list: {reply.button}]")
        n = 0
        for group in _groups(reply):
            if group.title:
                lines.append(f"  — {group.title} —")
            for row in group.rows:
                n += 1
                extra = f" ({row.description})" if isinstance(row, outbound.Row) and row.description else ""
                lines.append(f"  {n}. {row.title}{extra}")
        if reply.footer:
            lines.append(f"_{reply.footer}_")
        return lines
    if isinstance(reply, outbound.CtaUrl):
        return [*reply.body.splitlines(), f"[link: {reply.display_text} → {reply.url}]"]
    if isinstance(reply, outbound.Media):
        what = reply.link or f"media id {reply.id}"
        extra = "".join(f" — {x}" for x in (reply.filename, reply.caption) if x)
        return [f"[{reply.kind}: {what}{extra}]"]
    if isinstance(reply, outbound.Location):
        extra = "".join(f" — {x}" for x in (reply.name, reply.address) if x)
        return [f"[location: {reply.latitude!r}, {reply.longitude!r}{extra}]"]  # as written: 106.6995, not 106.7
    if isinstance(reply, outbound.Contacts):
        return [f"[contact: {_contact_line(c)}]" for c in reply.contacts]
    if isinstance(reply, outbound.Template):
        params = json.dumps(list(reply.components), ensure_ascii=False) if reply.components else ""
        return [f"[template: {reply.name} ({reply.language}){' ' + params if params else ''}]"]
    return [f"[reaction: {reply.emoji or 'removed'}]"]


@dataclass(frozen=True, slots=True)
class _Group:
    title: str | None
    rows: tuple[outbound.Button | outbound.Row, ...]


def _groups(reply: outbound.Buttons | outbound.ListMessage) -> list[_Group]:
    if isinstance(reply, outbound.Buttons):
        return [_Group(None, reply.buttons)]
    return [_Group(s.title if len(reply.sections) > 1 else None, s.rows) for s in reply.sections]


def _contact_line(card: dict[str, Any]) -> str:
    name = card.get("name") or {}
    shown = name.get("formatted_name") or name.get("first_name") or "?" if isinstance(name, dict) else str(name)
    phones = [p.get("phone", "") for p in card.get("phones") or [] if isinstance(p, dict)]
    return " ".join([str(shown), *phones])


async def offline_http(call: advance.HttpCall) -> advance.HttpResult:
    """Answer every http step with an error, without touching the network."""
    return advance.HttpResult(False, error="offline: no request was made")
