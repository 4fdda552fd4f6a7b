"""Handoffs nobody answers end by themselves: a periodic sweep over the stored conversations.

The deadline lives in each conversation's stored state (when the handoff opened or a person
last answered), so a restart loses nothing: the first sweep after it finds what expired meanwhile.
The engine decides and tells the customer; this only wakes it up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from wabot.server.keys import DISPATCHER, STORE
from wabot.whatsapp import inbound

log = logging.getLogger(__name__)

EVERY = 60.0  # seconds between sweeps: a handoff ends at most a minute late


async def sweep_once(app: web.Application) -> int:
    """Wake up every conversation whose handoff has waited too long; how many were found."""
    dispatcher, store = app[DISPATCHER], app[STORE]
    stale = await store.stale_handoffs(before=dispatcher.clock() - dispatcher.bot.handoff_timeout)
    for key in stale:
        if key in dispatcher.queues:
            continue  # the customer's own message or a turn in hand will see it
        dispatcher.tick(await store.contact(key) or inbound.Customer(key))
    if stale:
        log.info("%d handoff(s) waited longer than bot.handoff_timeout_minutes without a person's answer; "
                 "ending them", len(stale))
    return len(stale)


async def _sweep(app: web.Application, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await sweep_once(app)
        except Exception:  # a failed sweep must not stop the next one
            log.exception("the handoff sweep failed; it runs again in %g seconds", every)


async def sweeping(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: sweep once at startup (what expired while stopped), then every EVERY seconds."""
    await sweep_once(app)
    task = asyncio.create_task(_sweep(app, EVERY), name="handoff-sweep")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
