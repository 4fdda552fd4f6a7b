"""Per-customer ordering: load state -> engine -> effects -> save state and queue replies, one commit.

One task per customer with work, so a customer's messages are handled one at a time and
in order while other customers go on in parallel. The inbox row is marked done in the
same commit that saves the state and queues the replies: a crash before that commit
replays the message on restart, a crash after it loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import aiohttp

from wabot.db import codec
from wabot.db.base import DATA_ERRORS, DB_ERRORS, Database, OutRow
from wabot.db.postgres import Lost, Stale
from wabot.db.timersql import TimerRow
from wabot.engine import advance
from wabot.errors import LimitError
from wabot.flows.model import Bot
from wabot.logs import mask
from wabot.server.effects import NO_PRIVATE_HOSTS, Effected, HttpRules, perform, real_http
from wabot.server.hub import Hub
from wabot.server.limits import DEFAULT_MAX_STATE_BYTES, fit_state
from wabot.server.media import MediaFiles
from wabot.server.metrics import Metrics
from wabot.server.outbox import Sender
from wabot.state import HANDOFF, IDLE, State
from wabot.templates import Renderer
from wabot.text import fold
from wabot.whatsapp import inbound, outbound, window

if TYPE_CHECKING:
    from wabot.server.cluster import Cluster

log = logging.getLogger(__name__)

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Work:
    """One event for one customer; `seq` is the inbox row of an inbound message."""

    seq: int | None
    customer: inbound.Customer
    event: advance.Event
    opening: outbound.Template | None = None  # a started flow's first words when the 24-hour window is closed

    @classmethod
    def stored(cls, seq: int, value: codec.Pending) -> Work:
        """An inbox row's work: a customer's message, or a flow the business API started."""
        if isinstance(value, codec.Started):
            return cls(seq, value.customer, advance.StartFlow(value.flow, value.vars), value.opening)
        return cls(seq, value.customer, advance.Incoming(value))

    def __str__(self) -> str:
        if isinstance(self.event, advance.Incoming):
            return f"message {self.event.message.id} ({self.event.message.type})"
        return type(self.event).__name__.lower()


class Dispatcher:
    """Feeds inbound messages to the engine, one customer at a time."""

    def __init__(
        self,
        *,
        store: Database,
        sender: Sender,
        bot: Bot,
        renderer: Renderer,
        http: aiohttp.ClientSession,
        clock: Callable[[], float] = time.time,
        stop_words: Iterable[str] = (),
        start_words: Iterable[str] = (),
        notify: str = "",
        read_receipts: bool = False,
        metrics: Metrics | None = None,
        http_rules: HttpRules = NO_PRIVATE_HOSTS,
        max_state_bytes: int = DEFAULT_MAX_STATE_BYTES,
        hub: Hub | None = None,
    ) -> None:
        self.store = store
        self.sender = sender
        self.bot = bot  # replaced as a whole on hot reload
        self.renderer = renderer
        self.http = http
        self.http_rules = http_rules
        self.max_state_bytes = max_state_bytes
        self.clock = clock
        self.notify = notify  # the operator's number, told about each new handoff
        self.read_receipts = read_receipts
        self.stop_words = frozenset(fold(w) for w in stop_words)
        self.start_words = frozenset(fold(w) for w in start_words)
        self.metrics = metrics or Metrics()
        self.hub = hub or Hub()  # tells the console (and other listeners) what happened
        self.queues: dict[str, deque[Work]] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.events = False  # keep events for the shop's systems (events.url is set): see server/shopevents.py
        self.cluster: Cluster | None = None  # several instances on PostgreSQL: customers are claimed first
        self.again: set[str] = set()  # customers whose running task must look at the inbox once more
        self.media: MediaFiles | None = None  # files customers send to questions (server/media.py)
        self.timer_set: Callable[[float], None] = lambda due: None  # a turn set a timer due then (server/timers.py)

    def submit(self, items: Sequence[tuple[int, codec.Pending]]) -> None:
        """Queue freshly stored inbox rows (seq, message or flow start); each customer's in arrival order."""
        if self.cluster is not None:  # the inbox is the queue: whoever holds the customer reads it
            for key in dict.fromkeys(value.customer.key for _, value in items):
                self.wake(key)
            return
        for seq, value in items:
            self._put(Work.stored(seq, value))

    def resume(self, customer: inbound.Customer) -> None:
        """Give a handed-off conversation back to the bot, in order with the customer's messages."""
        self._put(Work(None, customer, advance.Resume()))

    def answered(self, customer: inbound.Customer) -> None:
        """A person answered a handed-off customer: the handoff waits `bot.handoff_timeout` again from now."""
        self._put(Work(None, customer, advance.Answered()))

    def tick(self, customer: inbound.Customer) -> None:
        """Time passed for this customer (a handoff nobody answered ends and the customer is told)."""
        self._put(Work(None, customer, advance.Tick()))

    def fire(self, customer: inbound.Customer, timer: TimerRow) -> None:
        """A flow timer is due (server/timers.py claimed it): through the customer's queue, like a message."""
        data = timer.data if self.media is None or timer.data is None else self.media.relinked(timer.data)
        event = advance.TimerFired(timer.id, timer.kind, timer.flow, timer.step, timer.n, data)
        self._put(Work(None, customer, event))

    def take_over(self, customer: inbound.Customer, *, reason: str) -> None:
        """A person takes the conversation (the bot pauses), in order with the customer's messages."""
        self._put(Work(None, customer, advance.TakeOver(reason)))

    def _put(self, work: Work) -> None:
        key = work.customer.key
        self.queues.setdefault(key, deque()).append(work)
        if self.cluster is not None:
            self.wake(key)
        elif key not in self.tasks:
            self.tasks[key] = asyncio.create_task(self._run(key), name=f"customer-{mask(key)}")

    def wake(self, key: str) -> None:
        """Several instances: handle what waits for the customer (their inbox rows, a resume), if ours to handle."""
        if key in self.tasks:
            self.again.add(key)
        else:
            self.tasks[key] = asyncio.create_task(self._run_shared(key), name=f"customer-{mask(key)}")

    async def _run_shared(self, key: str) -> None:
        """Claim the customer, handle their inbox in order until nothing waits, then give them up."""
        cluster = self.cluster
        assert cluster is not None
        lost = False
        try:
            while True:  # claim, handle until nothing waits, give up; claim anew if something came meanwhile
                while not await cluster.acquire(key):
                    if not self.queues.get(key):  # the holder handles the inbox; tell it something came
                        cluster.tell(f"inbox {key}")
                        return
                    await asyncio.sleep(min(1.0, cluster.lease / 10))  # a resume of ours must wait for the holder
                while True:
                    self.again.discard(key)
                    local = self.queues.pop(key, deque())
                    stored = [Work.stored(seq, value) for seq, value in await cluster.store.pending(key)]
                    if not local and not stored:
                        # refused while replies wait: the sender's idle comes back here
                        released = key not in self.again and await cluster.release(key)
                        if key not in self.again:
                            return
                        if released:  # a message came while the claim was given up (the release did not see it)
                            break  # and handling it unclaimed got the turn refused and left it for seconds
                        continue
                    for i, work in enumerate(works := [*local, *stored]):
                        try:
                            if not await self._attempt(work, key):
                                return  # the database failed: the renewal comes back to it
                        except Lost:
                            cluster.lose(key)  # another instance took the customer over while this one stalled
                            rest = [w for w in works[i:] if w.seq is None]  # inbox rows: the new holder's to read
                            self.queues.setdefault(key, deque()).extendleft(reversed(rest))
                            lost = True
                            return
        except asyncio.CancelledError:
            raise
        except DB_ERRORS as exc:
            log.error("could not handle the messages of %s: the database failed (%s); trying again shortly",
                      mask(key), exc)
        finally:
            del self.tasks[key]
            if self.queues.get(key):
                if lost:  # our own work (a resume) waits for the new holder
                    self.wake(key)
            else:
                self.queues.pop(key, None)

    async def _attempt(self, work: Work, key: str) -> bool:
        """One turn, its failures contained; False when the database failed (the work stays stored)."""
        try:
            await self._turn(work)
        except (asyncio.CancelledError, Lost):
            raise
        except Stale:
            log.info("%s from %s was already answered by another instance", work, mask(key))
        except DB_ERRORS as exc:
            log.error("could not process %s from %s: the database failed (%s); it is processed again "
                      "later", work, mask(key), exc)
            return False
        except Exception:
            log.exception("could not process %s from %s; the conversation starts over", work, mask(key))
            if work.seq is not None:
                await self.store.skip(work.seq, customer=key)
        return True

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
                work = queue[0]
                try:
                    await self._turn(work)
                except asyncio.CancelledError:
                    raise
                except DATA_ERRORS as exc:  # this message, not the database: replaying it would fail for ever
                    log.error("could not store the turn of %s from %s (%s); the message is skipped",
                              work, mask(key), exc)
                    if work.seq is not None:
                        await self.store.skip(work.seq, customer=key)
                except DB_ERRORS as exc:  # the database, not the message: it stays in the inbox for a restart
                    log.error("could not process %s from %s: the database failed (%s); it is processed again "
                              "after a restart", work, mask(key), exc)
                except Exception:  # a bug must neither block this customer nor replay forever after restarts
                    log.exception("could not process %s from %s; the conversation starts over", work, mask(key))
                    if work.seq is not None:
                        await self.store.skip(work.seq, customer=key)
                queue.popleft()
        finally:
            del self.tasks[key]
            if not queue:
                del self.queues[key]

    async def _turn(self, work: Work) -> None:
        started = time.perf_counter()
        arrived = self.metrics.arrival(work.seq)
        customer, key = work.customer, work.customer.key
        if isinstance(work.event, advance.Incoming):
            if self.read_receipts:
                self.sender.mark_read(work.event.message.id)
            await self._opt_out(key, work.event.message)
        if isinstance(work.event, advance.TimerFired):
            timer = work.event
            if not await self.store.timer_pending(timer.id):
                log.info("%s timer %d of %s was cancelled or has fired already", timer.kind, timer.id, mask(key))
                return
            is_open = window.is_open(await self.store.last_inbound(key), now=self.clock())
            work = replace(work, event=replace(timer, window_open=is_open))
        state = await self.store.load_state(key)
        bot = self.bot

        def step(state: State | None, event: advance.Event) -> advance.Outcome:
            return self._advance(bot, state, event, customer)

        async def http(call: advance.HttpCall) -> advance.HttpResult:
            return await real_http(self.http, call, self.http_rules)

        event = work.event
        if isinstance(event, advance.Incoming) and self.media is not None:  # a question wants the file it carries
            event = await self._fetch(event, bot, state, key)
        outcome = await perform(step(state, event), step=step, http=http)
        replies, handoff = outcome.replies, outcome.handoff
        if handoff:
            log.info("handoff opened for %s: %s", mask(key), handoff)
        recipient = outbound.Recipient(customer.wa_id, customer.user_id)
        opening = work.opening
        if opening is not None and replies:  # the window is closed: the template opens the conversation instead
            replies = (opening,)
        bodies = [b for b in (self._body(recipient, r, key) for r in replies) if b is not None]
        final, final_json = fit_state(outcome.state, self.max_state_bytes, customer=key)
        contact = customer if isinstance(work.event, advance.Incoming) else None
        fired = (work.event.id, outcome.note) if isinstance(work.event, advance.TimerFired) else None
        events = self._events(state, outcome, handoff) if self.events else ()
        if self.cluster is not None:  # saved only while this instance still holds the customer
            rows = await self.cluster.store.finish_turn(
                seq=work.seq, customer=key, state=final, bodies=bodies, now=self.clock(), contact=contact,
                handoff=handoff, events=events, owner=self.cluster.me, timers=outcome.timers, fired=fired,
                state_json=final_json,
            )
        else:
            rows = await self.store.finish_turn(
                seq=work.seq, customer=key, state=final, bodies=bodies, now=self.clock(), contact=contact,
                handoff=handoff, events=events, timers=outcome.timers, fired=fired, state_json=final_json,
            )
        if fired is not None:
            log.info("%s timer %d of %s: %s", work.event.kind if isinstance(work.event, advance.TimerFired) else "",
                     fired[0], mask(key), fired[1])
        dues = [t.due for t in outcome.timers if isinstance(t, advance.SetTimer)]
        if dues:
            self.timer_set(min(dues))
        self.metrics.awaiting(rows, arrived=arrived)
        if self.cluster is not None:
            self.sender.adopt(rows)  # a notice may have brought them already (an agent's reply queued meanwhile)
        else:
            self.sender.enqueue(rows)
        self._tell(work, state, outcome.state, rows, handoff)
        if handoff and self.notify and not isinstance(work.event, advance.TakeOver):
            await self._notify(customer, handoff)
        log.info(
            "%s from %s: flow %s step %s, %d replies, %.1f ms",
            work, mask(key), outcome.state.flow or "-", outcome.state.step or "-",
            len(rows), (time.perf_counter() - started) * 1000,
        )

    async def _fetch(self, event: advance.Incoming, bot: Bot, state: State | None, key: str) -> advance.Incoming:
        """Download and check a file the waiting question takes (server/media.py); the engine gets the verdict."""
        found, rule = event.message.content, advance.wanted_media(bot, state, event.message)
        if self.media is None or rule is None or not isinstance(found, inbound.Media):
            return event
        fetched = await self.media.fetch(found, rule, customer=key)
        return event if fetched is None else advance.Incoming(event.message, fetched)

    def _tell(self, work: Work, before: State | None, after: State, rows: list[OutRow], reason: str | None) -> None:
        """Publish what this turn did to the hub (the console's live pages)."""
        if not self.hub.subscribers and self.hub.relay is None:  # nobody listens, here or on another instance
            return
        key, hub = work.customer.key, self.hub
        if isinstance(work.event, advance.Incoming) and hub.wants("message_in"):
            m = work.event.message
            hub.publish("message_in", key, {"id": m.id, "type": m.type, "text": m.text or ""})
        if rows and hub.wants("replies_queued"):
            hub.publish("replies_queued", key, {"ids": [r.id for r in rows]})
        if hub.wants("turn"):
            hub.publish("turn", key, {
                "flow": after.flow, "step": after.step, "status": after.status,
                "missed": _missed(before, after),
                "text": (work.event.message.text or "") if isinstance(work.event, advance.Incoming) else "",
            })
        was = before.status if before else IDLE
        if after.status == HANDOFF and was != HANDOFF:
            self.hub.publish("handoff_opened", key, {"reason": reason or ""})
        elif was == HANDOFF and after.status != HANDOFF:
            self.hub.publish("handoff_closed", key)

    def _events(self, before: State | None, outcome: Effected, reason: str | None) -> list[tuple[str, Any]]:
        """What the shop's systems hear about this turn (kept in the turn's commit; sent by server/shopevents.py)."""
        was, now = before.status if before else IDLE, outcome.state.status
        closed: list[tuple[str, Any]] = [("handoff_closed", {})] if was == HANDOFF and now != HANDOFF else []
        opened = [("handoff_opened", {"reason": reason or ""})] if now == HANDOFF and was != HANDOFF else []
        finished = [("flow_finished", {"flow": f, "vars": v}) for f, v in outcome.finished]
        return [*closed, *finished, *opened]  # the order they happened in

    def deliver(self, key: str, rows: list[OutRow]) -> None:
        """Send replies queued outside a turn (an agent's answer, a notice, a template), in order with the turns'.

        With several instances the one holding the customer sends them, once (Cluster.deliver).
        """
        if self.cluster is not None:
            self.cluster.deliver(key, rows)
        else:
            self.sender.enqueue(rows)

    async def reengage(self, key: str) -> None:
        """A reply bounced off the closed 24-hour window (131047): queue the `reengage` template, once a day.

        Once a day per customer for every instance sharing the database, and across restarts: the store
        keeps when the last one was queued.
        """
        now = self.clock()
        if advance.REENGAGE not in self.bot.replies:
            log.warning(
                "a reply to %s was refused: the customer last wrote more than 24 hours ago (Meta error 131047). "
                "To reach such customers, add a reply named 'reengage' holding an approved template message.",
                mask(key),
            )
            return
        if await self.store.opted_out(key):
            log.info("%s is outside the 24-hour window but opted out; no template sent", mask(key))
            return
        customer = await self.store.contact(key) or inbound.Customer(key)
        state = await self.store.load_state(key)
        template = advance.reengage(self.bot, self.renderer, state, customer=customer, now=now)
        body = self._body(outbound.Recipient(customer.wa_id, customer.user_id), template, key) if template else None
        if body is None:
            return
        rows = await self.store.reengage(key, body, now=now, every=DAY)
        if not rows:
            log.info("%s is outside the 24-hour window; a re-engagement template went less than a day ago",
                     mask(key))
            return
        self.deliver(key, rows)
        log.info("re-engagement template %r queued for %s", template.name if template else "", mask(key))

    async def _notify(self, customer: inbound.Customer, reason: str) -> None:
        """Tell the operator's WhatsApp number that someone waits (it must have written within 24 hours)."""
        who = f"{customer.name} ({customer.key})" if customer.name else customer.key
        note = outbound.Text(f"🔔 {who} cần nhân viên: {reason}. Xem: wabot handoff show {customer.key}")
        body = self._body(outbound.Recipient(self.notify), note, self.notify)
        if body is not None:
            self.deliver(self.notify, await self.store.queue(self.notify, [body], now=self.clock()))

    async def _opt_out(self, key: str, message: inbound.Message) -> None:
        """A stop word opts the customer out of bot-initiated templates; a start word opts them back in."""
        said = fold(message.text or "")
        if said and said in self.stop_words:
            await self.store.set_opted_out(key, True, now=self.clock(),
                                           events=[("opted_out", {})] if self.events else ())
            self.hub.publish("opted_out", key)
            log.info("%s opted out of messages the bot starts", mask(key))
        elif said and said in self.start_words:
            await self.store.set_opted_out(key, False, now=self.clock(),
                                           events=[("opted_in", {})] if self.events else ())
            self.hub.publish("opted_in", key)
            log.info("%s opted back in", mask(key))

    def _advance(
        self, bot: Bot, state: State | None, event: advance.Event, customer: inbound.Customer
    ) -> advance.Outcome:
        return advance.advance(bot, self.renderer, state, event, customer=customer, now=self.clock())

    def _body(self, recipient: outbound.Recipient, reply: outbound.Outgoing, key: str) -> dict[str, Any] | None:
        try:
            outbound.check_limits(reply)
        except LimitError as err:
            log.error("a reply to %s was not sent because it breaks a WhatsApp limit: %s", mask(key), err)
            return None
        return outbound.to_body(recipient, reply)


def _missed(before: State | None, after: State) -> bool:
    """The customer's message matched nothing: the fallback counted it, or the same question failed again."""
    if before is None:  # a first message: as from State(), without building one
        return after.misses > 0 or (not after.flow and not after.step and after.attempts > 0)
    same_place = (before.flow, before.step) == (after.flow, after.step)
    return after.misses > before.misses or (same_place and after.attempts > before.attempts)
