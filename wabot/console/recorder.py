"""Keeps what the numbers page needs: after every turn, where the customer is (funnel) and what the bot
did not understand. It listens to the hub and writes in batches, off the customers' path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from wabot.console.pages import DB
from wabot.db.base import DB_ERRORS
from wabot.server.hub import Happening
from wabot.server.keys import HUB

log = logging.getLogger(__name__)

__all__ = ["recording"]

BATCH = 500  # turns written in one commit at most


async def recording(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context of the admin app: the recorder runs while the server does."""
    with app[HUB].subscribe() as queue:
        task = asyncio.create_task(_record(app, queue), name="console-recorder")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await _write(app, _drain(queue, []))  # what came in before the stop


async def _record(app: web.Application, queue: asyncio.Queue[Happening]) -> None:
    while True:
        first = await queue.get()
        await asyncio.sleep(0)  # let a burst of turns gather, then write them in one commit
        await _write(app, _drain(queue, [first]))


def _drain(queue: asyncio.Queue[Happening], batch: list[Happening]) -> list[Happening]:
    while len(batch) < BATCH and not queue.empty():
        batch.append(queue.get_nowait())
    return batch


async def _write(app: web.Application, batch: list[Happening]) -> None:
    if any(h.kind == "overflow" for h in batch):
        log.warning("the console's recorder fell behind; some turns are missing from the funnel")
    turns = [(h.customer, str(h.data.get("flow", "")), str(h.data.get("step", "")), bool(h.data.get("missed")),
              str(h.data.get("text", "")), h.at) for h in batch if h.kind == "turn"]
    if not turns:
        return
    try:
        await app[DB].console.record_turns(turns)
    except DB_ERRORS as exc:  # the numbers page misses these turns; the conversations are not affected
        log.error("the console could not record %d turns for the numbers page: %s", len(turns), exc)
