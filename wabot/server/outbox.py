"""The background sender: delivers queued replies in order per customer, paced, with retries.

Every row is already committed to the outbox table before it reaches `enqueue`; the
sender only moves it to sent/failed. One send per customer is in flight at a time,
so a customer's replies arrive in the order the engine produced them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from wabot.db.base import DB_ERRORS, Database
from wabot.db.rows import OutRow
from wabot.errors import GraphError
from wabot.logs import mask, mask_text
from wabot.server.metrics import Metrics
from wabot.whatsapp.graph import WINDOW_CLOSED, GraphClient
from wabot.whatsapp.outbound import MarkRead, shown

log = logging.getLogger(__name__)


class Pacer:
    """Spaces sends evenly at `rate` per second (Meta counts messages per second per business number).

    A send that comes up to `slack` seconds after its slot takes it (and goes at once) instead of starting the
    schedule over from now: a loop busy for a moment then catches up, so the pace over a second holds (issue
    13's bench: within 5 %). Over any second, at most `slack` × rate sends more than the rate can go.
    A send that must wait wakes at the end of the `tick` its slot falls in, with the other sends of that tick:
    they run in one pass of the loop and share its commits (claims, sent marks) instead of one pass and one
    commit each at 1,000/s (bench/README.md: 40 % of a campaign send's CPU). A send goes at most `tick` late.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic, *, slack: float = 0.02,
                 tick: float = 0.01, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.interval = 1.0 / rate
        self.clock = clock
        self.slack = slack
        self.tick = tick
        self.sleep = sleep
        self.next = 0.0

    async def wait(self) -> None:
        now = self.clock()
        slot = max(now - self.slack, self.next)
        self.next = slot + self.interval
        if slot > now:
            await self.sleep(math.ceil(slot / self.tick) * self.tick - now)


RECENT = 4096  # finished outbox ids a sender remembers (a stale read of the queue lists only recent ones)


def backoff(attempt: int, *, base: float = 0.5, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter: attempt 1 -> up to 0.5 s, 2 -> 1 s, ... capped."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


class Sender:
    """Owns the send workers; `graph` None means dry-run (log instead of send)."""

    def __init__(
        self,
        store: Database,
        graph: GraphClient | None,
        *,
        rate: float,
        max_attempts: int,
        concurrency: int,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        retry_for: float = 24 * 3600.0,
        max_backoff: float = 60.0,
    ) -> None:
        self.store = store
        self.graph = graph
        self.max_attempts = max_attempts
        self.retry_for = retry_for  # a Meta outage of hours must lose nothing (issue 16 item 3)
        self.max_backoff = max_backoff
        self.failing_since: dict[int, float] = {}  # outbox id -> first retryable failure (this run)
        self.concurrency = concurrency
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.pacer = Pacer(rate)
        self.queues: dict[str, deque[OutRow]] = {}
        self.busy: set[str] = set()  # customers with a send in flight or a retry pending
        self.ready: asyncio.Queue[str] = asyncio.Queue()
        self.parked: set[str] = set()  # customers waiting for a new token
        self.paused: str | None = None  # why sending is paused, in plain words
        self.workers: list[asyncio.Task[None]] = []
        self.timers: set[asyncio.TimerHandle] = set()
        self.idle = asyncio.Event()
        self.idle.set()
        # called with the customer when a reply bounced off the closed 24-hour window (131047)
        self.on_window_closed: Callable[[str], Coroutine[Any, Any, None]] | None = None
        self.hooks: set[asyncio.Task[Any]] = set()
        self.sent: list[tuple[str, float, int]] = []  # (wamid, when, outbox id) not yet committed
        self.flushes: set[asyncio.Task[None]] = set()
        self.events = False  # tell the shop's systems about replies that failed for good (events.url is set)
        self.rate = rate
        # several instances (server/cluster.py): told when sending pauses, and when a customer has nothing left
        self.on_pause: Callable[[str], None] | None = None
        self.on_idle: Callable[[str], None] | None = None
        self.may_send: Callable[[str], bool] = lambda customer: True  # False: the lease on the customer is in doubt
        self.leaving: set[int] = set()  # outbox ids off the queue whose sent/failed mark is not yet committed
        self.claiming: tuple[list[int], asyncio.Task[set[int]]] | None = None  # this pass's claims (`_claim`)
        # and, after the commit, the last RECENT of them: a read of the queued rows that raced their sends may still
        # list them (a console reply was sent twice when such a stale read reached adopt on PostgreSQL)
        self.finished: dict[int, None] = {}

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, *, load: bool = True) -> None:
        """Load what a previous run left queued (unless other instances share it), then start the workers."""
        if load:
            self.enqueue(await self.store.queued())
        self.workers = [asyncio.create_task(self._work(), name=f"sender-{i}") for i in range(self.concurrency)]

    async def stop(self, grace: float) -> None:
        """Give queued messages up to `grace` seconds to go out, then stop the workers."""
        if self.depth and not self.paused:
            try:
                await asyncio.wait_for(self.idle.wait(), grace)
            except TimeoutError:
                log.warning("shutdown: %d replies still queued; they will be sent after the restart", self.depth)
        for timer in self.timers:
            timer.cancel()
        for task in [*self.workers, *self.hooks]:
            task.cancel()
        await asyncio.gather(*self.workers, *self.hooks, return_exceptions=True)
        await asyncio.gather(*self.flushes)  # what was sent is recorded before the database closes
        self.workers = []

    @property
    def retrying(self) -> int:
        """Replies that failed for a passing reason and wait for their next try."""
        return len(self.failing_since)

    @property
    def depth(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def enqueue(self, rows: list[OutRow]) -> None:
        for row in rows:
            queue = self.queues.setdefault(row.customer, deque())
            queue.append(row)
            if row.customer not in self.busy and row.customer not in self.parked:
                self.busy.add(row.customer)
                self.ready.put_nowait(row.customer)
        if self.queues:
            self.idle.clear()

    def adopt(self, rows: list[OutRow]) -> None:
        """Queue rows read back from the database (another instance's, or queued outside a turn), each once, in order.

        Skipped: rows queued here already, and rows this sender took off its queue whose new status is not yet
        committed (the database still says queued).
        """
        fresh = [r for r in rows if r.id not in self.leaving and r.id not in self.finished
                 and all(r.id != q.id for q in self.queues.get(r.customer, ()))]
        touched = {r.customer: r.customer in self.busy for r in fresh}  # busy: its head may be in flight
        self.enqueue(fresh)
        for customer, busy in touched.items():
            queue = self.queues[customer]
            rows = list(queue)
            queue.clear()
            queue.extend([*rows[:busy], *sorted(rows[busy:], key=lambda r: r.id)])

    def drop(self, customer: str) -> None:
        """Forget the customer's queued replies: another instance took the customer over and sends them."""
        for row in self.queues.pop(customer, ()):
            self.failing_since.pop(row.id, None)
        if not self.queues:
            self.idle.set()

    def share(self, instances: int) -> None:
        """`instances` send for the same number: each takes its part of outbox.rate_per_second."""
        self.pacer.interval = instances / self.rate

    def resume(self, graph: GraphClient) -> None:
        """A new token is in place: send what waited for it."""
        self.graph = graph
        self.paused = None
        parked, self.parked = self.parked, set()
        for customer in parked:
            self.busy.add(customer)
            self.ready.put_nowait(customer)
        log.info("sending resumed with the new access token; %d replies waiting", self.depth)

    # --- the work -------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            customer = await self.ready.get()
            try:
                await self._send_head(customer)
            except asyncio.CancelledError:
                raise
            except Exception:  # the sender loop is one of the two places unexpected errors stop
                log.exception("unexpected error while sending to %s; will retry", mask(customer))
                self._later(customer, backoff(3))

    async def _send_head(self, customer: str) -> None:
        queue = self.queues.get(customer)
        if not queue:
            self._done(customer)
            return
        if self.paused:
            self.busy.discard(customer)
            self.parked.add(customer)
            return
        row = queue[0]
        await self.pacer.wait()
        if self.queues.get(customer) is not queue:  # dropped meanwhile: another instance took the customer over
            self._next(customer)
            return
        if not self.may_send(customer):  # checked last before the post: a stall after it costs one reply at most
            self._later(customer, 0.1)
            return
        if row.once and row.id not in await asyncio.shield(self._claim(row.id)):  # shared: one waiter's cancel
            # must not cancel the others'. Not claimed here: another instance is sending it, or a crash caught it
            # mid-send; never twice
            log.info("campaign message %d is not sent here: it was already being sent", row.id)
            queue.popleft()
            self.failing_since.pop(row.id, None)
            self._next(customer)
            return
        started = time.perf_counter()
        try:
            wamid = await self._post(row)
        except GraphError as err:
            await self._failed(customer, row, err)
            return
        queue.popleft()
        self.failing_since.pop(row.id, None)
        if wamid is None:  # dry-run: written to the log, and recorded as such, never as sent
            self.metrics.dry_run(row.id)
            self.leaving.add(row.id)
            try:
                await self.store.mark_dry_run(row.id, now=self.clock())
            finally:
                self._finish([row.id])
            self._next(customer)
            return
        self.metrics.sent(row.id)
        self._mark_sent(row.id, wamid)
        if self.graph is not None and log.isEnabledFor(logging.INFO):  # the summary costs; not at WARNING
            log.info("sent reply %d to %s: %s, %.0f ms", row.id, mask(customer), summary(row.body),
                     (time.perf_counter() - started) * 1000)
        if queue and self.flushes:
            # the customer's next reply goes once this one is recorded as sent, so a crash resends at most one reply
            # per customer, right after itself (on PostgreSQL the record takes a round trip, not a loop pass)
            await asyncio.wait(set(self.flushes))  # (wait, unlike gather, never cancels them)
        self._next(customer)

    def _claim(self, row_id: int) -> asyncio.Task[set[int]]:
        """Claim an at-most-once row for its Graph call: the claims asked in one loop pass share one statement and
        one commit (one commit per campaign message cost more than its send's database work); the task gives the
        rows claimed, committed before any of them is posted."""
        if self.claiming is None:
            ids: list[int] = []
            task = asyncio.create_task(self._claim_pass(ids))  # its first step runs in the next pass
            self.hooks.add(task)
            task.add_done_callback(self.hooks.discard)
            self.claiming = ids, task
        ids, task = self.claiming
        ids.append(row_id)
        return task

    async def _claim_pass(self, ids: list[int]) -> set[int]:
        self.claiming = None  # claims asked from now on go in the next statement
        return await self.store.campaigns.sending(ids, now=self.clock())

    async def _post(self, row: OutRow) -> str | None:
        """The message id Meta gave the reply; None in dry-run, where the reply is only logged."""
        if self.graph is None:
            log.info("DRY RUN: reply to %s not sent: %s", mask(row.customer), summary(row.body))
            return None
        return await self.graph.send_body(row.payload or row.body)

    async def _failed(self, customer: str, row: OutRow, err: GraphError) -> None:
        now = self.clock()
        self.metrics.graph_error(err.code)
        if err.auth:
            if not self.paused:
                self.paused = str(err)
                log.error("%s Sending is paused; %d replies are kept and will be sent then.", err, self.depth)
                if self.on_pause is not None:
                    self.on_pause(self.paused)
            self.busy.discard(customer)
            self.parked.add(customer)
            return
        attempts = row.attempts + 1
        since = self.failing_since.setdefault(row.id, now)
        if err.retryable and (attempts < self.max_attempts or now - since < self.retry_for):
            self.queues[customer][0] = OutRow(row.id, row.customer, row.body, attempts, row.payload, row.once)
            await self.store.mark_retry(row.id, code=err.code, error=str(err), now=now)
            delay = backoff(attempts, cap=self.max_backoff)
            self.metrics.retried()
            log.warning("send to %s failed (%s); retry %d in %.1fs", mask(customer), err, attempts, delay)
            self._later(customer, delay)
            return
        self.queues[customer].popleft()
        self.failing_since.pop(row.id, None)
        reason = str(err) if not err.retryable else f"gave up after {attempts} attempts in {now - since:.0f} s: {err}"
        self.leaving.add(row.id)
        try:
            await self.store.mark_failed(row.id, code=err.code, error=reason, now=now)
        finally:
            self._finish([row.id])
        if self.events:
            await self.store.api.add_events(customer, [("reply_failed", {"id": str(row.id), "code": err.code,
                                                                     "error": reason})], now=now)
        self.metrics.failed(row.id)
        log.error("reply %d to %s failed for good: %s", row.id, mask(customer), reason)
        if err.code == WINDOW_CLOSED:
            self.window_closed(customer)
        self._next(customer)

    def _mark_sent(self, row_id: int, wamid: str) -> None:
        """Record a send; the sends of one loop pass share one commit (one per reply cost ~15 % of the CPU)."""
        self.sent.append((wamid, self.clock(), row_id))
        self.leaving.add(row_id)
        if len(self.sent) == 1:
            task = asyncio.create_task(self._flush_sent())
            self.flushes.add(task)
            task.add_done_callback(self.flushes.discard)

    async def _flush_sent(self) -> None:
        await asyncio.sleep(0)  # let the other sends finishing in this pass join
        sent, self.sent = self.sent, []
        try:
            await self.store.mark_sent_many(sent)
        except DB_ERRORS as exc:  # they stay 'queued': sent again after a restart (the documented duplicate)
            log.error("could not record %d sent replies in the database: %s", len(sent), exc)
            return  # and never again by this process: they stay among `leaving`
        self._finish([row_id for _, _, row_id in sent])

    def _finish(self, ids: list[int]) -> None:
        """These rows' marks are written: off `leaving`, and remembered among the last RECENT finished ones."""
        self.leaving.difference_update(ids)
        self.finished.update(dict.fromkeys(ids))
        while len(self.finished) > RECENT:
            del self.finished[next(iter(self.finished))]

    def mark_read(self, message_id: str) -> None:
        """Blue ticks and "typing…" for a message being answered; best effort, never stored or retried."""
        if self.graph is None or self.paused:
            return
        task = asyncio.create_task(self._mark_read(self.graph, message_id))
        self.hooks.add(task)
        task.add_done_callback(self.hooks.discard)

    async def _mark_read(self, graph: GraphClient, message_id: str) -> None:
        await self.pacer.wait()  # it counts against the number's rate like any other call
        try:
            await graph.mark_read(MarkRead(message_id, typing=True))
        except GraphError as err:
            log.info("could not mark message %s read: %s", message_id, err)

    def window_closed(self, customer: str) -> None:
        """Run the re-engagement hook in the background (the failure may also arrive as a status webhook)."""
        if self.on_window_closed is not None:
            task = asyncio.create_task(self.on_window_closed(customer))
            self.hooks.add(task)
            task.add_done_callback(self.hooks.discard)

    def _next(self, customer: str) -> None:
        if self.queues.get(customer):
            self.ready.put_nowait(customer)
        else:
            self._done(customer)

    def _done(self, customer: str) -> None:
        self.queues.pop(customer, None)
        self.busy.discard(customer)
        if not self.queues:
            self.idle.set()
        if self.on_idle is not None:
            self.on_idle(customer)

    def _later(self, customer: str, delay: float) -> None:
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle

        def fire() -> None:
            self.timers.discard(timer)
            self.ready.put_nowait(customer)

        timer = loop.call_later(delay, fire)
        self.timers.add(timer)



def summary(body: dict[str, Any]) -> str:
    """A one-line description of a Graph message body for logs: what the customer sees, after a list's kind."""
    part = body.get("interactive")
    kind = f"{part.get('type', 'interactive')} " if body.get("type") == "interactive" and isinstance(part, dict) else ""
    return mask_text(kind + repr(shown(body)))
