"""Per-customer ordering: load state -> engine -> effects -> save state and queue replies, one commit.

One task per customer with work, so a customer's messages are handled one at a time and
in order while other customers go on in parallel. The inbox row is marked done in the
same commit that saves the state and queues the replies: a crash before that commit
replays the message on restart, a crash after it loses nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp

from . import engine, inbound, outbound
from .errors import LimitError
from .flows.model import Bot
from .outbox import Sender, mask
from .state import State
from .store import Store
from .templates import Renderer

log = logging.getLogger(__name__)

MAX_EFFECT_ROUNDS = 20  # http steps in a row within one turn


class Dispatcher:
    """Feeds inbound messages to the engine, one customer at a time."""

    def __init__(
        self,
        *,
        store: Store,
        sender: Sender,
        bot: Bot,
        renderer: Renderer,
        http: aiohttp.ClientSession,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.sender = sender
        self.bot = bot  # replaced as a whole on hot reload
        self.renderer = renderer
        self.http = http
        self.clock = clock
        self.queues: dict[str, deque[tuple[int, inbound.Message]]] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def submit(self, items: list[tuple[int, inbound.Message]]) -> None:
        """Queue freshly stored messages (seq, message); each customer's in arrival order."""
        for seq, message in items:
            key = message.customer.key
            self.queues.setdefault(key, deque()).append((seq, message))
            if key not in self.tasks:
                self.tasks[key] = asyncio.create_task(self._run(key), name=f"customer-{mask(key)}")

    async def recover(self) -> None:
        """Process what a previous run stored but did not finish."""
        pending = await self.store.pending()
        if pending:
            log.info("recovering %d inbound messages left unprocessed by the last run", len(pending))
            self.submit(pending)

    async def drain(self, grace: float) -> None:
        """Wait for the work in hand (up to `grace` seconds), then cancel what is left; it replays on restart."""
        tasks = list(self.tasks.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _run(self, key: str) -> None:
        queue = self.queues[key]
        try:
            while queue:
                seq, message = queue[0]
                try:
                    await self._turn(seq, message)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a bug must neither block this customer nor replay forever after restarts
                    log.exception(
                        "could not process message %s from %s; it is skipped and the conversation starts over",
                        message.id, mask(key),
                    )
                    await self.store.skip(seq, customer=key)
                queue.popleft()
        finally:
            del self.tasks[key]
            if not queue:
                del self.queues[key]

    async def _turn(self, seq: int, message: inbound.Message) -> None:
        started = time.perf_counter()
        key = message.customer.key
        state = await self.store.load_state(key)
        bot = self.bot
        outcome = self._advance(bot, state, engine.Incoming(message), message.customer)
        replies = list(outcome.replies)
        for _ in range(MAX_EFFECT_ROUNDS):
            calls = [e for e in outcome.effects if isinstance(e, engine.HttpCall)]
            for effect in outcome.effects:
                if isinstance(effect, engine.HandoffOpened):
                    log.info("handoff opened for %s: %s", mask(key), effect.reason or "no reason given")
            if not calls:
                break
            result = await self._http(calls[0])
            outcome = self._advance(bot, outcome.state, result, message.customer)
            replies.extend(outcome.replies)
        recipient = outbound.Recipient(message.customer.wa_id, message.customer.user_id)
        bodies = [b for b in (self._body(recipient, r, key) for r in replies) if b is not None]
        rows = await self.store.finish_turn(
            seq=seq, customer=key, state=outcome.state, bodies=bodies, now=self.clock()
        )
        self.sender.enqueue(rows)
        log.info(
            "message %s from %s (%s): flow %s step %s, %d replies, %.1f ms",
            message.id, mask(key), message.type, outcome.state.flow or "-", outcome.state.step or "-",
            len(rows), (time.perf_counter() - started) * 1000,
        )

    def _advance(
        self, bot: Bot, state: State | None, event: engine.Event, customer: inbound.Customer
    ) -> engine.Outcome:
        return engine.advance(bot, self.renderer, state, event, customer=customer, now=self.clock())

    def _body(self, recipient: outbound.Recipient, reply: outbound.Outgoing, key: str) -> dict[str, Any] | None:
        try:
            outbound.check_limits(reply)
        except LimitError as err:
            log.error("a reply to %s was not sent because it breaks a WhatsApp limit: %s", mask(key), err)
            return None
        return outbound.to_body(recipient, reply)

    async def _http(self, call: engine.HttpCall) -> engine.HttpResult:
        try:
            async with self.http.request(
                call.method,
                call.url,
                headers=call.headers,
                json=call.body,
                timeout=aiohttp.ClientTimeout(total=call.timeout),
            ) as resp:
                text = await resp.text()
                try:
                    data: Any = json.loads(text) if text else None
                except ValueError:
                    data = text
                if resp.status >= 400:
                    return engine.HttpResult(False, resp.status, data, f"the server answered {resp.status}")
                return engine.HttpResult(True, resp.status, data)
        except TimeoutError:
            return engine.HttpResult(False, error=f"no answer within {call.timeout:g} seconds")
        except aiohttp.ClientError as exc:
            return engine.HttpResult(False, error=f"could not connect: {exc.__class__.__name__}")
        except ValueError as exc:  # an invalid URL after rendering
            return engine.HttpResult(False, error=f"invalid request: {exc}")
