"""Events to the shop's systems: what the events table holds, POSTed to `events.url`, signed, at least once.

Each event is stored in the same commit as the change it tells of (dispatch.py, outbox.py); this loop only
delivers. Per customer, one event at a time and oldest first, so the shop hears a customer's events in order;
with several instances on PostgreSQL each event is claimed by one of them for its delivery (db/areas.py).
A failed delivery is retried with exponential backoff (kept in the table, so across restarts too); after
`events.max_attempts` the event is dead-lettered: logged, listed at GET /api/v1/events/dead, sent again on
POST /api/v1/events/{id}/retry. Receivers must ignore an event id they already have (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from wabot.db.areas import ApiData, EventRow
from wabot.db.base import DB_ERRORS
from wabot.logs import mask
from wabot.server.keys import DISPATCHER, HUB, SENDER, SETTINGS, STORE
from wabot.server.webhook import sign

log = logging.getLogger(__name__)

__all__ = ["SIGNATURE_HEADER", "Deliverer", "delivering"]

SIGNATURE_HEADER = "X-Wabot-Signature-256"  # "sha256=" + hex HMAC-SHA256 of the raw body, as Meta's X-Hub-Signature-256
TIMEOUT = 10.0  # seconds for the receiver to answer
IDLE_POLL = 1.0  # seconds between looks at the table when nothing woke the loop
# seconds an event is claimed for while one instance delivers it: past the receiver's timeout, so only an instance
# that died mid-delivery leaves it to another (several instances on PostgreSQL; at least once, never two at once)
LEASE = 3 * TIMEOUT


def backoff(attempt: int, *, base: float = 1.0, cap: float = 600.0) -> float:
    """Seconds before the next try: 1, 2, 4, ... up to 10 minutes, with jitter so receivers are not stampeded."""
    return float(min(cap, base * 2 ** (attempt - 1))) * random.uniform(0.8, 1.2)


class Deliverer:
    """Sends due events, one per customer at a time, until stopped."""

    def __init__(
        self, store: ApiData, http: aiohttp.ClientSession, *, url: str, secret: str, max_attempts: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.http, self.url, self.secret = store, http, url, secret
        self.max_attempts, self.clock = max_attempts, clock
        self.wake = asyncio.Event()
        self.claimed: set[int] = set()  # events claimed and not yet marked delivered or failed

    async def run(self) -> None:
        while True:
            try:
                await self._pass()
            except DB_ERRORS as exc:  # the database, not the events: they wait in the table
                log.error("events cannot be read or updated in the database (%s); trying again in 5 s", exc)
                await asyncio.sleep(5)

    async def _pass(self) -> None:
        """Deliver what is due now, else wait until something may be."""
        due = await self.store.due_events(now=self.clock(), lease=LEASE)
        if due:
            self.claimed.update(e[0] for e in due)
            await asyncio.gather(*(self._deliver(e) for e in due))
            return
        self.wake.clear()
        nxt = await self.store.next_event_at()
        wait = IDLE_POLL if nxt is None else max(0.0, min(IDLE_POLL, nxt - self.clock()))
        with contextlib.suppress(TimeoutError):  # nothing woke us: look at the table again
            await asyncio.wait_for(self.wake.wait(), wait)

    async def _deliver(self, event: EventRow) -> None:
        event_id, customer, kind, data, attempts, created = event
        body = json.dumps({
            "id": str(event_id), "type": kind, "customer": customer,
            "at": datetime.fromtimestamp(created, UTC).isoformat(timespec="seconds"), "data": json.loads(data),
        }, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self.secret, body),
                   "X-Wabot-Event-Id": str(event_id)}
        try:
            async with self.http.post(self.url, data=body, headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as resp:
                await resp.read()
                error = "" if resp.status < 300 else f"the receiver answered {resp.status}"
        except TimeoutError:
            error = f"no answer within {TIMEOUT:g} seconds"
        except aiohttp.ClientError as exc:
            error = f"could not connect: {exc.__class__.__name__}"
        now = self.clock()
        if not error:
            await self.store.event_delivered(event_id, now=now)
            self.claimed.discard(event_id)
            return
        tries = attempts + 1
        dead = tries >= self.max_attempts
        await self.store.event_failed(event_id, error=error, next_at=now + backoff(tries), dead=dead, now=now)
        self.claimed.discard(event_id)
        if dead:
            log.error("event %d (%s for %s) dead-lettered after %d tries: %s; see GET /api/v1/events/dead",
                      event_id, kind, mask(customer), tries, error)
        else:
            log.warning("event %d (%s) not delivered to %s (%s); try %d of %d", event_id, kind, self.url, error,
                        tries, self.max_attempts)


async def delivering(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context (after the resources): deliver events while the server runs, when events.url is set."""
    settings = app[SETTINGS]
    if not settings.events_url:
        yield
        return
    store = app[STORE].api
    app[DISPATCHER].events = app[SENDER].events = app[STORE].events = True
    deliverer = Deliverer(store, app[DISPATCHER].http, url=settings.events_url, secret=settings.events_secret,
                          max_attempts=settings.events_max_attempts)
    task = asyncio.create_task(deliverer.run(), name="events")

    async def nudge() -> None:  # a happening usually means a new event: look now rather than at the next poll
        with app[HUB].subscribe() as queue:
            while True:
                await queue.get()
                deliverer.wake.set()

    listener = asyncio.create_task(nudge(), name="events-nudge")
    log.info("events go to %s", settings.events_url)
    try:
        yield
    finally:
        for t in (listener, task):
            t.cancel()
        await asyncio.gather(listener, task, return_exceptions=True)
        if deliverer.claimed:  # deliveries the stop cut short: due again at once, not after their 30-s claim
            with contextlib.suppress(*DB_ERRORS):
                await store.unclaim_events(sorted(deliverer.claimed), now=time.time())
