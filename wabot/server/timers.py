"""The flows' timers come due: each is claimed in the database and fired through the customer's queue.

Timers live in the database (set in the commit of the turn that set them), so a restart loses none: the
first look after start finds what came due while wabot was down and fires it at once. Between looks the
scheduler sleeps until the next timer is due, at most POLL seconds (another instance may have set an earlier
one), and a turn of this instance that sets a timer wakes it. A due timer is claimed before it is handed to
the dispatcher, so with several instances on PostgreSQL only one fires it; the turn checks that it is still
pending and marks it fired in its own commit, so it fires once even when a claim ran out meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from wabot.db.base import DB_ERRORS, Database
from wabot.server.dispatch import Dispatcher
from wabot.server.keys import DISPATCHER, STORE
from wabot.whatsapp import inbound

log = logging.getLogger(__name__)

POLL = 0.5  # seconds between looks at most: a timer fires within about this long of its time
CLAIM = 60.0  # seconds a claim holds on SQLite (one server): longer than a turn waits in a customer's queue
BATCH = 200  # due timers claimed at once


class Scheduler:
    """Fires due timers of `store` through `dispatcher`, from start until `stop`."""

    def __init__(self, store: Database, dispatcher: Dispatcher, *, owner: str, claim: float) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.owner = owner
        self.claim = claim
        self.woken = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def wake(self, due: float) -> None:
        """A turn set a timer due at `due`: look again (it may be sooner than the current sleep)."""
        self.woken.set()

    async def once(self) -> int:
        """Fire every timer due now; how many were handed to the dispatcher."""
        fired = 0
        while True:
            now = self.dispatcher.clock()
            due = await self.store.claim_timers(owner=self.owner, now=now, until=now + self.claim, limit=BATCH)
            for timer in due:
                customer = await self.store.contact(timer.customer) or inbound.Customer(timer.customer)
                self.dispatcher.fire(customer, timer)
            fired += len(due)
            if len(due) < BATCH:
                return fired

    async def run(self) -> None:
        while True:
            try:
                await self.once()
                upcoming = await self.store.next_timer()
            except DB_ERRORS as exc:
                log.error("could not look for due flow timers (%s); trying again in %g seconds", exc, POLL)
                upcoming = None
            except Exception:  # a failed look must not stop the next one
                log.exception("the timer scheduler failed; it looks again in %g seconds", POLL)
                upcoming = None
            pause = POLL if upcoming is None else min(POLL, max(0.0, upcoming - self.dispatcher.clock()))
            self.woken.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.woken.wait(), pause)

    async def start(self) -> None:
        self.dispatcher.timer_set = self.wake
        self.task = asyncio.create_task(self.run(), name="timers")

    async def stop(self) -> None:
        self.dispatcher.timer_set = lambda due: None
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def scheduling(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: fire what came due while stopped, then each timer as it comes due."""
    store, dispatcher = app[STORE], app[DISPATCHER]
    cluster = dispatcher.cluster
    if cluster is None:
        voided = await store.unclaim_timers()  # the one server of this file: a killed one's claims mean nothing
        if voided:
            log.info("%d flow timer(s) claimed by the last run were not fired; they fire now if due", voided)
    owner = cluster.me if cluster is not None else "local"
    scheduler = Scheduler(store, dispatcher, owner=owner, claim=cluster.lease if cluster is not None else CLAIM)
    await scheduler.start()
    try:
        yield
    finally:
        await scheduler.stop()
