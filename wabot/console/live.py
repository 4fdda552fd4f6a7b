"""Live pages: the server's happenings pushed to the browser as Server-Sent Events (`/console/events`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from aiohttp import web

from wabot.console.pages import PREFIX
from wabot.server.keys import HUB

__all__ = ["CLOSING", "add_routes", "closing"]

HEARTBEAT = 15.0  # seconds: a comment line keeps proxies from closing a quiet stream
CLOSING = web.AppKey("console_closing", asyncio.Event)


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/events", events)
    app.cleanup_ctx.append(closing)


async def closing(app: web.Application) -> AsyncIterator[None]:
    """Tell open streams to end when the server stops (they would otherwise hold the shutdown)."""
    app[CLOSING] = asyncio.Event()

    async def stop(app: web.Application) -> None:
        app[CLOSING].set()

    app.on_shutdown.append(stop)
    yield


async def events(request: web.Request) -> web.StreamResponse:
    """Every happening as `data: {"kind", "customer", "data"}`; the page decides what to refresh."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    closed = request.app[CLOSING]
    with request.app[HUB].subscribe() as queue:
        stop = asyncio.ensure_future(closed.wait())
        try:
            while not closed.is_set():
                get = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({get, stop}, timeout=HEARTBEAT, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await get
                    if not closed.is_set():
                        await response.write(b": still here\n\n")
                    continue
                h = get.result()
                line = json.dumps({"kind": h.kind, "customer": h.customer, "data": dict(h.data)}, ensure_ascii=False)
                await response.write(f"data: {line}\n\n".encode())
        except ConnectionResetError:  # the browser went away
            pass
        finally:
            stop.cancel()
    return response
