"""Customers: search by name, number in any form or saved variable; export as JSON Lines or CSV."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from wabot.console import talk
from wabot.console.pages import DB, PREFIX, error, render, staff
from wabot.server.keys import SETTINGS

log = logging.getLogger(__name__)

__all__ = ["add_routes"]

EXPORT_LIMIT = 10_000  # customers in one export (each with up to EXPORT_MESSAGES messages)
EXPORT_MESSAGES = 1000


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/customers", customers_page)
    app.router.add_get(f"{PREFIX}/export.jsonl", export_jsonl)
    app.router.add_get(f"{PREFIX}/export.csv", export_csv)


async def customers_page(request: web.Request) -> web.Response:
    query = request.query.get("q", "")[:200]
    found = await request.app[DB].console.search(query)
    return render(request, "customers.html", page="customers", q=query, found=found)


async def _rows(request: web.Request) -> list[dict[str, object]] | web.Response:
    if staff(request).role != "admin":
        return error(request, 403, "admins_only")
    store, query = request.app[DB], request.query.get("q", "")[:200]
    zone = ZoneInfo(request.app[SETTINGS].bot.timezone)
    out: list[dict[str, object]] = []
    for customer, name, status, flow, step, _, opted in await store.console.search(query, EXPORT_LIMIT):
        for e in talk.entries(await store.console.messages(customer, EXPORT_MESSAGES)):
            out.append({
                "customer": customer, "name": name or "", "at": datetime.fromtimestamp(e.at, zone).isoformat(),
                "direction": e.direction, "type": e.kind, "text": e.text, "status": e.status, "error": e.error,
                "agent": e.agent, "state": status, "flow": flow, "step": step, "opted_out": opted,
            })
    log.info("console: %s exported %d messages (query %r)", staff(request).name, len(out), query)
    return out


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="wabot-{name}-{time.strftime("%Y%m%d")}"'}


async def export_jsonl(request: web.Request) -> web.Response:
    rows = await _rows(request)
    if isinstance(rows, web.Response):
        return rows
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    return web.Response(text=text, content_type="application/x-ndjson", headers=_attachment("export.jsonl"))


async def export_csv(request: web.Request) -> web.Response:
    rows = await _rows(request)
    if isinstance(rows, web.Response):
        return rows
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["customer"])
    writer.writeheader()
    writer.writerows(rows)
    # a byte-order mark, so that spreadsheet programs read the Vietnamese letters as UTF-8
    return web.Response(text="\ufeff" + buffer.getvalue(), content_type="text/csv", headers=_attachment("export.csv"))
