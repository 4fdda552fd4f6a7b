"""Keeps what the numbers page needs: after every turn, where the customer is (funnel) and what the bot
did not understand. It listens to the hub and writes in batches, off the customers' path.

A batch gathers for GATHER seconds: one commit for the turns of that moment rather than one per turn (issue 14
item 5: a commit of its own per turn cost the hot path more than the turn's own commit). The numbers page asks
for what is held first (`Recorder.flush`), so it never shows less than the turns finished before it was asked.
"""

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

__all__ = ["RECORDER", "Recorder", "recording"]

BATCH = 500  # turns written in one commit at most
GATHER = 0.05  # seconds a batch gathers after its first turn


class Recorder:
    """The turns heard from the hub, written a batch at a time."""

    def __init__(self, app: web.Application, queue: asyncio.Queue[Happening]) -> None:
        self.app = app
        self.queue = queue
        self.held: list[Happening] = []  # taken from the queue, not written yet
        self.lock = asyncio.Lock()  # batches are written in the order they were taken

    async def run(self) -> None:
        while True:
            self.held.append(await self.queue.get())
            await asyncio.sleep(GATHER)  # let the turns of this moment gather, then write them in one commit
            await self.flush()

    async def flush(self) -> None:
        """Write every turn heard so far (up to BATCH)."""
        async with self.lock:
            batch, self.held = self.held, []
            while len(batch) < BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            await _write(self.app, batch)


RECORDER = web.AppKey("console_recorder", Recorder)


async def recording(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context of the admin app: the recorder runs while the server does."""
    with app[HUB].subscribe(kinds=frozenset({"turn"})) as queue:
        app[RECORDER] = recorder = Recorder(app, queue)
        task = asyncio.create_task(recorder.run(), name="console-recorder")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await recorder.flush()  # what came in before the stop


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
