"""The handoff desk: an admin HTTP API for people taking over conversations from the bot.

Off unless an admin token is configured (WABOT_ADMIN_TOKEN). Every request carries
`Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from wabot.db.history import entry
from wabot.errors import LimitError
from wabot.logs import mask
from wabot.server.keys import DISPATCHER, SENDER, SETTINGS, STORE
from wabot.server.remote import client_address
from wabot.state import HANDOFF
from wabot.whatsapp import outbound

log = logging.getLogger(__name__)

PREFIX = "/admin"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/handoffs", handoffs)
    app.router.add_get(f"{PREFIX}/conversations/{{customer}}", conversation)
    app.router.add_post(f"{PREFIX}/conversations/{{customer}}/reply", reply)
    app.router.add_post(f"{PREFIX}/conversations/{{customer}}/resume", resume)


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Admin paths need the bearer token; everything else passes through."""
    if not request.path.startswith(PREFIX + "/"):
        return await handler(request)
    token = request.app[SETTINGS].admin_token
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].encode(), token.encode()):
        log.warning("admin API refused a request without the right token (from %s)", client_address(request))
        return _error(401, "This needs the admin token: send the header 'Authorization: Bearer <WABOT_ADMIN_TOKEN>'.")
    return await handler(request)


async def handoffs(request: web.Request) -> web.Response:
    """Customers waiting for a person, longest wait first (`since` in the bot's time zone, ISO 8601)."""
    zone = ZoneInfo(request.app[SETTINGS].bot.timezone)
    waiting = [
        {**h, "since": datetime.fromtimestamp(h["since"], zone).isoformat(timespec="seconds")}
        for h in await request.app[STORE].handoffs()
    ]
    return web.json_response({"handoffs": waiting}, dumps=_dumps)


async def conversation(request: web.Request) -> web.Response:
    """A customer's state and recent messages."""
    store, customer = request.app[STORE], request.match_info["customer"]
    state = await store.load_state(customer)
    contact = await store.contact(customer)
    if state is None and contact is None:
        return _error(404, f"No conversation with {customer}.")
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "50"))))
    except ValueError:
        return _error(400, "limit must be a whole number.")
    timezone = request.app[SETTINGS].bot.timezone
    return web.json_response(
        {
            "customer": customer,
            "name": contact.name if contact else None,
            "status": state.status if state else "idle",
            "flow": state.flow if state else "",
            "step": state.step if state else "",
            "vars": dict(state.vars) if state else {},
            "opted_out": await store.opted_out(customer),
            "messages": [entry(r, timezone=timezone) for r in await store.history(customer, limit=limit)],
        },
        dumps=_dumps,
    )


async def reply(request: web.Request) -> web.Response:
    """Send a text as the agent, through the outbox like every other message."""
    store, customer = request.app[STORE], request.match_info["customer"]
    contact = await store.contact(customer)
    if contact is None:
        return _error(404, f"No conversation with {customer}: the customer has to write first.")
    try:
        data = await request.json()
    except ValueError:
        return _error(400, 'The body must be JSON like {"text": "Chào anh, em là Lan"}.')
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        return _error(400, 'The body must be JSON like {"text": "Chào anh, em là Lan"}.')
    message = outbound.Text(text)
    try:
        outbound.check_limits(message)
    except LimitError as err:
        return _error(400, str(err))
    body = outbound.to_body(outbound.Recipient(contact.wa_id, contact.user_id), message)
    rows = await store.queue(customer, [body], now=request.app[DISPATCHER].clock())
    request.app[SENDER].enqueue(rows)
    log.info("agent reply queued for %s", mask(customer))
    return web.json_response({"queued": [r.id for r in rows]}, status=202)


async def resume(request: web.Request) -> web.Response:
    """Give the conversation back to the bot."""
    store, customer = request.app[STORE], request.match_info["customer"]
    state = await store.load_state(customer)
    contact = await store.contact(customer)
    if state is None or contact is None or state.status != HANDOFF:
        return _error(409, f"{customer} is not waiting for a person, so there is nothing to give back.")
    request.app[DISPATCHER].resume(contact)
    log.info("conversation with %s given back to the bot", mask(customer))
    return web.json_response({"resumed": customer}, status=202)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
