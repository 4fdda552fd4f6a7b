"""The handoff desk: an admin HTTP API for people taking over conversations from the bot.

Off unless an admin token is configured (WABOT_ADMIN_TOKEN). Every request carries
`Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from wabot.db.history import entry
from wabot.errors import LimitError
from wabot.logs import mask
from wabot.server.keys import DISPATCHER, SETTINGS, STORE
from wabot.server.remote import client_address
from wabot.state import HANDOFF
from wabot.whatsapp import outbound

log = logging.getLogger(__name__)

PREFIX = "/admin"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MIN_TOKEN_LENGTH = 16  # a shorter admin token can be guessed; the desk stays closed until it is longer
MAX_FAILURES = 10  # wrong tokens from one address per window, then 429 until the window ends
FAILURE_WINDOW = 60.0  # seconds


@dataclass(slots=True)
class Throttle:
    """Wrong admin tokens per client address, so the token cannot be guessed at thousands a second."""

    failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # address -> (count, window start)

    def blocked(self, address: str, now: float) -> float:
        """Seconds `address` must wait before trying again; 0 if it may try now."""
        count, start = self.failures.get(address, (0, now))
        return max(0.0, start + FAILURE_WINDOW - now) if count >= MAX_FAILURES else 0.0

    def failed(self, address: str, now: float) -> None:
        count, start = self.failures.get(address, (0, now))
        if now - start > FAILURE_WINDOW:
            count, start = 0, now
        if len(self.failures) > 10_000:  # many addresses: forget the stale ones
            self.failures = {a: v for a, v in self.failures.items() if now - v[1] <= FAILURE_WINDOW}
        self.failures[address] = (count + 1, start)


THROTTLE = web.AppKey("admin_throttle", Throttle)


def add_routes(app: web.Application) -> None:
    app[THROTTLE] = Throttle()
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
    if len(token) < MIN_TOKEN_LENGTH:
        log.warning("admin API closed: WABOT_ADMIN_TOKEN is shorter than %d characters", MIN_TOKEN_LENGTH)
        return _error(403, f"The admin API is closed: WABOT_ADMIN_TOKEN must be at least {MIN_TOKEN_LENGTH} "
                           "characters long (try `openssl rand -hex 24`).")
    throttle, address, now = request.app[THROTTLE], request.remote or "?", time.monotonic()
    if wait := throttle.blocked(address, now):
        return web.json_response({"error": f"Too many wrong admin tokens; try again in {wait:.0f} seconds."},
                                 status=429, headers={"Retry-After": str(int(wait) + 1)})
    given = request.headers.get("Authorization", "")
    # non-ASCII header bytes arrive as surrogate escapes: compare bytes, never fail on them
    if not given.startswith("Bearer ") or not hmac.compare_digest(
        given[7:].encode("utf-8", "surrogateescape"), token.encode()
    ):
        throttle.failed(address, now)
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
    if any("\ud800" <= c <= "\udfff" for c in text):
        return _error(400, "The text has a broken character (a lone UTF-16 surrogate); send it again as UTF-8.")
    message = outbound.Text(text)
    try:
        outbound.check_limits(message)
    except LimitError as err:
        return _error(400, str(err))
    body = outbound.to_body(outbound.Recipient(contact.wa_id, contact.user_id), message)
    rows = await store.queue(customer, [body], now=request.app[DISPATCHER].clock())
    request.app[DISPATCHER].deliver(customer, rows)  # by the instance holding the customer, in order
    request.app[DISPATCHER].answered(contact)  # a person answered: the handoff does not expire from now
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
