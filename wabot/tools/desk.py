"""Operator commands: `wabot handoff list|show|reply|resume` (through the running server's admin API),
`wabot history WA_ID` and `wabot export` (straight from the database)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from wabot.config import Settings
from wabot.db.base import open_database
from wabot.db.history import entry, lines, number_pattern, timer_lines
from wabot.db.pgsql import shown


async def admin_call(
    settings: Settings, method: str, path: str, *, body: Any = None, base_url: str | None = None
) -> tuple[int, Any]:
    """One admin API request to the running server; (status, JSON answer)."""
    host = settings.admin_host if settings.admin_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    base = base_url or f"http://{host}:{settings.admin_port}"
    headers = {"Authorization": f"Bearer {settings.admin_token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, session.request(
        method, f"{base}/admin{path}", json=body, headers=headers
    ) as resp:
        try:
            data = await resp.json(content_type=None)
        except ValueError:
            data = {"error": (await resp.text())[:200]}
        return resp.status, data


def handoff(settings: Settings, action: str, customer: str | None, text: str | None,
            *, out: TextIO = sys.stdout, base_url: str | None = None) -> int:
    """`wabot handoff ...`: 0 when the server did it, 1 when it refused, 2 when it cannot be reached."""
    if not settings.admin_token:
        print("wabot: the handoff desk is off: set WABOT_ADMIN_TOKEN (admin.token in the config) for the server "
              "and for this command.", file=sys.stderr)
        return 2
    if action != "list" and not customer:
        print(f"wabot: 'handoff {action}' needs the customer's number (wa_id).", file=sys.stderr)
        return 2
    calls = {
        "list": ("GET", "/handoffs", None),
        "show": ("GET", f"/conversations/{customer}", None),
        "reply": ("POST", f"/conversations/{customer}/reply", {"text": text or ""}),
        "resume": ("POST", f"/conversations/{customer}/resume", None),
    }
    method, path, body = calls[action]
    try:
        status, data = asyncio.run(admin_call(settings, method, path, body=body, base_url=base_url))
    except (aiohttp.ClientError, TimeoutError, OSError):
        print(f"wabot: the admin listener is not answering on {settings.admin_host}:{settings.admin_port} (admin.host, "
              "admin.port); is `python -m wabot` running?",
              file=sys.stderr)
        return 2
    if status >= 400:
        print(f"wabot: {data.get('error', status) if isinstance(data, dict) else status}", file=sys.stderr)
        return 1
    _print(action, data, customer, out)
    return 0


def _print(action: str, data: Any, customer: str | None, out: TextIO) -> None:
    if action == "list":
        rows = data["handoffs"]
        if not rows:
            print("Nobody is waiting for a person.", file=out)
        for h in rows:
            since = str(h["since"])[:19].replace("T", " ")
            print(f"{h['customer']}  {h['name'] or '-'}  waiting since {since}  {h['reason']}", file=out)
    elif action == "show":
        print(f"{data['customer']} ({data['name'] or 'no name'}): {data['status']}, flow {data['flow'] or '-'} "
              f"step {data['step'] or '-'}{', opted out' if data['opted_out'] else ''}", file=out)
        for line in lines(data["messages"]):
            print(line, file=out)
    elif action == "reply":
        print(f"Queued for {customer}.", file=out)
    else:
        print(f"{customer} is back with the bot.", file=out)


def history(settings: Settings, customer: str, *, limit: int = 50, out: TextIO = sys.stdout) -> int:
    """`wabot history NUMBER`: the conversation, oldest first, with delivery statuses and times with their zone.

    NUMBER in any form: +84 912 345 678, 0912345678, or masked as the log prints it (8491****678).
    """
    pattern = number_pattern(customer)
    if pattern is None:
        print(f"wabot: {customer!r} is not a phone number; write it as 84912345678, +84 912 345 678, "
              "0912345678 or as the log shows it (8491****678).", file=sys.stderr)
        return 2

    async def read() -> tuple[list[str], list[tuple[Any, ...]], list[dict[str, Any]]]:
        store = await open_database(settings.database_target)
        try:
            found = await store.customers_like(pattern, limit=10)
            rows = await store.history(found[0], limit=limit) if len(found) == 1 else []
            timers = await store.timers(found[0], limit=limit) if len(found) == 1 else []
            return found, rows, timers
        finally:
            await store.close()

    found, rows, timers = asyncio.run(read())
    if len(found) > 1:
        more = " (and more)" if len(found) == 10 else ""
        print(f"wabot: {customer} matches several customers: {', '.join(found)}{more}. Give the whole number.",
              file=sys.stderr)
        return 1
    if not rows:
        print(f"No messages with {customer} in {shown(settings.database_target)}.", file=out)
        return 1
    for line in lines([entry(r, timezone=settings.bot.timezone) for r in rows]):
        print(line, file=out)
    if timers:
        print("Timers (reminders, timeouts and waits of the flows), by when they are due:", file=out)
        for line in timer_lines(timers, timezone=settings.bot.timezone):
            print(line, file=out)
    return 0


def export(settings: Settings, path: Path | None, *, out: TextIO = sys.stdout) -> int:
    """`wabot export`: every message as one JSON object per line (JSON Lines), to a file or stdout."""

    async def read() -> list[tuple[Any, ...]]:
        store = await open_database(settings.database_target)
        try:
            return await store.history()
        finally:
            await store.close()

    rows = asyncio.run(read())
    target = path.open("w", encoding="utf-8") if path else out
    try:
        for r in rows:
            target.write(json.dumps(entry(r, timezone=settings.bot.timezone), ensure_ascii=False) + "\n")
        target.flush()
    except BrokenPipeError:  # `wabot export | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python exits
        return 0
    finally:
        if path:
            target.close()
    if path:
        print(f"{len(rows)} messages written to {path}", file=sys.stderr)
    return 0
