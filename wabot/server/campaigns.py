"""Campaigns: one template to many customers, fed to the outbox a little at a time so replies keep priority.

The outbox's pacer spaces every send at `outbox.rate_per_second`, replies and campaigns alike. This loop only
tops the outbox up: when fewer than 0.05 s worth of messages wait, it queues that many more
recipients. A customer who writes mid-campaign therefore waits behind at most ~0.1 s of campaign messages.
Each recipient is queued in the same commit that marks it queued (db/campaignsql.py, db/pgcampaigns.py), so a
crash or `kill -9` resumes where it stopped and never queues a customer twice. Several instances on PostgreSQL
each feed their own outbox, claiming different recipients, and each sends at its share of the rate, so the
number as a whole keeps `outbox.rate_per_second`; a message a dead instance was sending is failed (never sent
twice) once it has been quiet for `quiet_for` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from wabot.db.areas import CampaignData
from wabot.db.base import DB_ERRORS
from wabot.server.keys import SENDER, SETTINGS, STORE
from wabot.server.outbox import Sender
from wabot.whatsapp import outbound

log = logging.getLogger(__name__)

__all__ = ["TICK", "Campaigner", "running"]

TICK = 0.05  # seconds of sending the outbox is topped up with (what a reply may wait behind)
IDLE_POLL = 1.0  # seconds between looks for a new campaign (the CLI writes them straight into the database)


class Campaigner:
    """Feeds the running campaigns' recipients into the outbox, oldest campaign first."""

    def __init__(self, store: CampaignData, sender: Sender, *, rate: float, clock: Callable[[], float] = time.time,
                 quiet_for: float | None = None) -> None:
        self.store, self.sender, self.clock = store, sender, clock
        self.quiet_for = quiet_for  # several instances: fail sends interrupted this long ago (None: at start only)
        self.swept = 0.0
        self.batch = max(1, int(rate * TICK))
        self.wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                busy = await self._top_up()
            except DB_ERRORS as exc:
                log.error("campaigns cannot be read or updated in the database (%s); trying again in 5 s", exc)
                busy = False
                await asyncio.sleep(5)
            if not busy:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), IDLE_POLL)

    async def _top_up(self) -> bool:
        """Queue one batch if the outbox has room; True while a campaign is running."""
        if self.quiet_for is not None and self.clock() - self.swept > self.quiet_for / 2:
            self.swept = self.clock()
            if lost := await self.store.interrupted(now=self.swept, quiet_for=self.quiet_for):
                log.warning("%d campaign messages were being sent by an instance that stopped; they are not sent "
                            "again (a campaign never sends twice) and count as unknown in the report", lost)
        campaigns = await self.store.running()
        if not campaigns:
            return False
        if self.sender.depth >= self.batch or self.sender.paused:
            await asyncio.sleep(TICK / 4)
            return True
        campaign, name, language = campaigns[0]

        def body(customer: str, params: list[str]) -> dict[str, Any]:
            return outbound.to_body(outbound.Recipient(customer), outbound.template_with(name, language, params))

        rows, more = await self.store.feed(campaign, limit=self.batch, now=self.clock(), bodies=body)
        self.sender.enqueue(rows)
        if not more:
            log.info("campaign %d: every recipient is queued", campaign)
        return True


async def running(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context (after the resources): send the campaigns while the server runs."""
    settings = app[SETTINGS]
    quiet_for = settings.lease_seconds + settings.whatsapp.timeout if settings.database_url else None
    campaigner = Campaigner(app[STORE].campaigns, app[SENDER], rate=settings.outbox.rate_per_second,
                            quiet_for=quiet_for)
    task = asyncio.create_task(campaigner.run(), name="campaigns")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
