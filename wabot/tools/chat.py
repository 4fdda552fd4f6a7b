"""`wabot chat`: talk to the bot in a terminal, or from piped input, through the real engine."""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp

from wabot.db.store import Store
from wabot.engine import advance
from wabot.flows.model import Bot
from wabot.server.effects import HttpAnswer, HttpRules, real_http
from wabot.state import State
from wabot.tools.conversation import Conversation, Turn, choices, describe, offline_http, refused
from wabot.tools.scenarios import duration
from wabot.whatsapp import inbound, outbound

HELP = """\
Type what the customer writes; type a number to tap that button or list row.
  /reset             start the conversation over
  /state             where the conversation is (flow, step) and the saved variables
  /as NAME           write as a customer with this name
  /lang vi|en        switch the customer's language
  /image [caption]   send a photo (a made-up media id)
  /location LAT LON  send a location, e.g. /location 10.77 106.70
  /resume            a person gives the conversation back to the bot (after a handoff)
  /wait 4h           let time pass (90s, 31m, 4h, 1d): reminders, timeouts and waits that come due on the
                     way (each at its time), the session timeout, a handoff nobody answers
  /timers            the timers waiting (reminders, timeouts, waits) and when they come due
  /help              this list
  /quit              leave (Ctrl-D works too)"""


@dataclass(frozen=True, slots=True)
class Options:
    name: str = "Khách"
    wa_id: str = "84900000000"
    db: Path | None = None  # None: a throw-away database
    offline: bool = False  # http steps fail instead of making requests
    echo: bool = False  # repeat each input line (for transcripts of piped input)


async def chat(bot: Bot, lines: Iterable[str], out: TextIO, *, options: Options, interactive: bool = False) -> int:
    """Run a chat session over `lines` (piped input or a script) and write the bot's side to `out`.

    `interactive`: read from the terminal with a prompt instead of from `lines`.
    """
    async with AsyncExitStack() as stack:
        if options.db is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="wabot-chat-"))
            db: Path = Path(folder) / "chat.db"
        else:
            db = options.db
        store = await Store.open(db)
        stack.push_async_callback(store.close)
        http: HttpAnswer = offline_http
        if not options.offline:
            session = await stack.enter_async_context(aiohttp.ClientSession())
            http = _bound(session)
        session_ = _Session(bot, store, http, out, options)
        if interactive:
            out.write(f"Chatting with the bot as {options.name}. Type /help for commands, /quit to leave.\n")
        for raw in _ask(out) if interactive else lines:
            line = raw.rstrip("\n")
            if options.echo:
                out.write(f"> {line}\n")
            if not await session_.handle(line.strip()):
                break
            out.flush()
    return 0


_AUTHOR_RULES = HttpRules(frozenset({"*"}))  # the author's own terminal: a shop API on localhost is fine


def _bound(session: aiohttp.ClientSession) -> HttpAnswer:
    async def call(request: advance.HttpCall) -> advance.HttpResult:
        return await real_http(session, request, _AUTHOR_RULES)

    return call


def _ask(out: TextIO) -> Iterator[str]:
    """Lines typed at a prompt, with line editing and history where the platform has readline."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401 - importing it gives input() editing and history
    while True:
        try:
            yield input("> ")
        except EOFError:
            out.write("\n")
            return


class _Session:
    def __init__(self, bot: Bot, store: Store, http: HttpAnswer, out: TextIO, options: Options) -> None:
        self.out = out
        self.calls: list[str] = []

        async def logged(call: advance.HttpCall) -> advance.HttpResult:
            result = await http(call)
            outcome = f"{result.status}" if result.ok else f"failed: {result.error or result.status}"
            self.calls.append(f"(http {call.method} {call.url} → {outcome})")
            return result

        customer = inbound.Customer(options.wa_id, name=options.name)
        self.skew = 0.0  # seconds added by /wait
        self.conversation = Conversation(bot, store=store, customer=customer, http=logged,
                                         clock=lambda: time.time() + self.skew)
        self.offered: list[tuple[str, str, str | None]] = []  # (kind, id, title) of the last choices shown

    def say(self, text: str) -> None:
        self.out.write(text + "\n")

    async def handle(self, line: str) -> bool:
        """Act on one input line; False to stop."""
        if not line:
            return True
        if line.startswith("/"):
            return await self.command(line)
        if line.isdigit() and 1 <= int(line) <= len(self.offered):
            kind, id_, title = self.offered[int(line) - 1]
            self.show(await self.conversation.send(inbound.Reply(kind, id_, title or "")))
        else:
            self.show(await self.conversation.send(inbound.Text(line)))
        return True

    async def command(self, line: str) -> bool:
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        c = self.conversation
        if name in ("/quit", "/exit", "/q"):
            return False
        if name == "/help":
            self.say(HELP)
        elif name == "/reset":
            await c.reset()
            self.offered = []
            self.say("(the conversation starts over: send a message)")
        elif name == "/state":
            await self.show_state()
        elif name == "/as" and rest:
            c.customer = inbound.Customer(c.customer.wa_id, name=rest)
            self.say(f"(you are now {rest})")
        elif name == "/lang" and rest in ("vi", "en"):
            state = await c.state() or State()
            await c.save(state.with_(vars={**state.vars, "lang": rest}))
            self.say(f"(language: {rest})")
        elif name == "/image":
            self.show(await c.send(inbound.Media("image", f"local-image-{c.sent + 1}", caption=rest or None)))
        elif name == "/location" and len(rest.split()) == 2:
            try:
                lat, lon = (float(x) for x in rest.split())
            except ValueError:
                self.say("(write it like /location 10.77 106.70)")
            else:
                self.show(await c.send(inbound.Location(lat, lon)))
        elif name == "/resume":
            self.show(await c.resume())
        elif name == "/wait" and (seconds := duration(rest)) is not None:
            until = time.time() + self.skew + seconds

            def move(due: float) -> None:
                self.skew = max(self.skew, due - time.time())

            for turn in await c.fire_due(until, move=move):  # the flows' timers on the way, each at its time
                self.say(f"(⏰ {turn.note})")
                self.show(turn)
            self.skew = max(self.skew, until - time.time())
            self.say(f"({rest} later)")
            self.show(await c.tick())
        elif name == "/timers":
            await self.show_timers()
        else:
            self.say(f"(unknown command {line!r}; type /help)")
        return True

    async def show_state(self) -> None:
        state = await self.conversation.state()
        if state is None or not state.flow:
            self.say(f"(no conversation running{', status ' + state.status if state else ''})")
        else:
            self.say(f"(flow {state.flow}, step {state.step}, {state.status})")
        for key, value in (state.vars if state else {}).items():
            self.say(f"  {key} = {json.dumps(value, ensure_ascii=False, default=str)}")

    async def show_timers(self) -> None:
        found = [t for t in await self.conversation.timers() if t["status"] == "pending"]
        if not found:
            self.say("(no timer waits)")
        for t in found:
            left = t["due"] - (time.time() + self.skew)
            self.say(f"(⏰ {t['kind']} at {t['flow']}/{t['step']} in {_span(left)})")

    def show(self, turn: Turn) -> None:
        for line in self.calls:
            self.say(line)
        self.calls.clear()
        offered: list[tuple[str, str, str | None]] = []
        for reply in turn.replies:
            lines = describe(reply)
            self.say(f"bot: {lines[0]}")
            for more in lines[1:]:
                self.say(f"     {more}")
            problem = refused(reply)
            if problem:
                self.say(f"     ⚠ the server would NOT send this message: {problem}")
            kind = "button_reply" if isinstance(reply, outbound.Buttons) else "list_reply"
            offered += [(kind, c.id, c.title) for c in choices(reply)]
        if offered:
            self.offered = offered
        elif turn.replies:
            self.offered = []
        if turn.handoff is not None:
            reason = f" ({turn.handoff})" if turn.handoff else ""
            self.say(f"(a person would take over now{reason}; the bot stays silent — /resume gives it back)")


def _span(seconds: float) -> str:
    """ "2h 5m", "45s": how long until a timer is due."""
    seconds = max(0, round(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m")) if v]
    return " ".join(parts[:2]) or f"{secs}s"
