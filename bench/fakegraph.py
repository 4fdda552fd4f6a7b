"""A fake Graph API in its own process: answers sends at once, timestamps each, streams them to the generator.

It also answers the demo shop's order look-up (`GET /orders/{code}`), so the `track` flow's http step
has a real server to talk to.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from aiohttp import web

FLUSH_SECONDS = 0.02  # how often received replies are handed to the generator


@dataclass(frozen=True, slots=True)
class Reply:
    """One message the bot sent, as the fake Graph saw it."""

    to: str
    at: float  # time.monotonic() on arrival (CLOCK_MONOTONIC is system-wide on Linux)
    wamid: str
    kind: str  # text, list, button, cta_url, image, location, contacts, read, ...
    text: str = ""
    options: tuple[tuple[str, str, str], ...] = ()  # (id, title, description) of buttons or list rows


def describe(body: dict[str, Any], *, at: float, wamid: str) -> Reply:
    """What the generator needs to know about a Graph send body: who, when, what kind, which options."""
    to = str(body.get("to") or body.get("recipient") or "").lstrip("+")
    if body.get("status") == "read":
        return Reply(to, at, wamid, "read")
    kind = str(body.get("type", "?"))
    part = body.get(kind)
    if kind == "text" and isinstance(part, dict):
        return Reply(to, at, wamid, "text", str(part.get("body", "")))
    if kind == "interactive" and isinstance(part, dict):
        itype = str(part.get("type", "?"))
        text = str((part.get("body") or {}).get("text", ""))
        action = part.get("action") or {}
        options: list[tuple[str, str, str]] = []
        for b in action.get("buttons") or ():
            reply = b.get("reply") or {}
            options.append((str(reply.get("id", "")), str(reply.get("title", "")), ""))
        for section in action.get("sections") or ():
            for row in section.get("rows") or ():
                options.append((str(row.get("id", "")), str(row.get("title", "")), str(row.get("description", ""))))
        return Reply(to, at, wamid, itype, text, tuple(options))
    caption = str(part.get("caption", "")) if isinstance(part, dict) else ""
    return Reply(to, at, wamid, kind, caption)


def make_app(out: list[Reply]) -> web.Application:
    """The fake Graph API: every POST to /{version}/{phone}/messages is accepted and recorded in `out`."""
    counter = itertools.count(1)

    async def messages(request: web.Request) -> web.Response:
        at = time.monotonic()
        body = await request.json(loads=json.loads)
        wamid = f"wamid.fake{next(counter)}"
        reply = describe(body, at=at, wamid=wamid)
        out.append(reply)
        if reply.kind == "read":
            return web.json_response({"success": True})
        return web.json_response(
            {"messaging_product": "whatsapp", "contacts": [{"input": reply.to, "wa_id": reply.to}],
             "messages": [{"id": wamid}]}
        )

    async def order(request: web.Request) -> web.Response:
        code = request.match_info["code"]
        return web.json_response({"code": code, "status": "đang giao", "eta": "2026-11-26"})

    app = web.Application()
    app.router.add_post("/{version}/{phone}/messages", messages)
    app.router.add_get("/orders/{code}", order)
    return app


async def _serve(port: int, conn: Connection) -> None:
    out: list[Reply] = []
    runner = web.AppRunner(make_app(out), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    conn.send("ready")
    try:
        # poll the pipe rather than add_reader: uvloop would make its descriptor non-blocking
        while not conn.poll():
            await asyncio.sleep(FLUSH_SECONDS)
            if out:
                batch, out[:] = list(out), []
                conn.send(batch)
    finally:
        if out:
            conn.send(list(out))
        conn.send("stopped")
        await runner.cleanup()


def serve(port: int, conn: Connection, use_uvloop: bool = False) -> None:
    """Process entry point: serve on 127.0.0.1:`port` until the parent writes anything to `conn`."""
    factory = uvloop_factory() if use_uvloop else None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_serve(port, conn))


def uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when the `speed` extra is installed, else None (asyncio's own loop)."""
    try:  # imported by name: uvloop is optional, and mypy checks the same code with or without it
        module = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = module.new_event_loop
    return factory
