"""Numbers that help authors: messages per day, active conversations, handoff waits, failed replies with
Meta's reasons, each flow's funnel, and the texts the bot did not understand."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from wabot.console.pages import DB, PREFIX, render
from wabot.console.recorder import RECORDER
from wabot.server.keys import DISPATCHER, SETTINGS

__all__ = ["add_routes"]

DAYS = 14  # days of messages shown
ACTIVE_WITHIN = 24 * 3600.0  # a conversation is active when it moved within a day and has not ended


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/numbers", numbers_page)


async def numbers_page(request: web.Request) -> web.Response:
    store, now = request.app[DB], time.time()
    offset = datetime.now(ZoneInfo(request.app[SETTINGS].bot.timezone)).utcoffset()
    bot = request.app[DISPATCHER].bot
    await request.app[RECORDER].flush()  # the turns finished so far count, not only those written yet
    reach = await store.console.funnel()
    funnels = []
    for name, flow in bot.flows.items():
        steps = [(s.key, *reach.get((name, s.key), (0, 0))) for s in flow.steps]
        if any(reached or stopped for _, reached, stopped in steps):
            funnels.append((name, [s for s in steps if s[1] or s[2]]))
    return render(
        request, "numbers.html", page="numbers",
        days=await store.console.by_day(now - DAYS * 86400, offset.total_seconds() if offset else 0.0, DAYS),
        overview=await store.console.overview(now, ACTIVE_WITHIN),
        failed=await store.console.failed_replies(), funnels=funnels,
        missed=await store.console.not_understood(),
    )
