"""The live handoff inbox and one conversation: answer, quick answers, templates outside the 24-hour window,
give back to the bot, take over any conversation. Every reply and resume records who did it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from wabot.console import talk
from wabot.console.pages import DB, PREFIX, error, refusal, render, see_other, staff
from wabot.engine import advance
from wabot.errors import LimitError
from wabot.flows.model import TemplateSpec
from wabot.logs import mask
from wabot.server.keys import DISPATCHER, SETTINGS
from wabot.state import HANDOFF
from wabot.templates import Renderer
from wabot.whatsapp import inbound, outbound, window

log = logging.getLogger(__name__)

__all__ = ["add_routes"]

SHOWN = 100  # messages on a conversation page
PREVIEW = 3  # last messages under each inbox entry


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/", inbox_page)
    app.router.add_get(f"{PREFIX}/inbox/items", inbox_items)
    app.router.add_get(f"{PREFIX}/inbox/count.json", inbox_count)
    app.router.add_get(f"{PREFIX}/c/{{customer}}", conversation_page)
    app.router.add_get(f"{PREFIX}/c/{{customer}}/messages", conversation_messages)
    app.router.add_post(f"{PREFIX}/c/{{customer}}/reply", reply)
    app.router.add_post(f"{PREFIX}/c/{{customer}}/template", template)
    app.router.add_post(f"{PREFIX}/c/{{customer}}/resume", resume)
    app.router.add_post(f"{PREFIX}/c/{{customer}}/take-over", take_over)


async def _waiting(request: web.Request) -> list[dict[str, Any]]:
    """Customers waiting for a person, the newest wait first, with their last messages."""
    store, now = request.app[DB], time.time()
    waiting = sorted(await store.handoffs(), key=lambda h: h["since"] or 0, reverse=True)
    for h in waiting:
        h["messages"] = talk.entries(await store.console.messages(h["customer"], PREVIEW))
        h["minutes"] = int((now - (h["since"] or now)) // 60)
    return waiting


async def inbox_page(request: web.Request) -> web.Response:
    return render(request, "inbox.html", waiting=await _waiting(request), page="inbox")


async def inbox_items(request: web.Request) -> web.Response:
    return render(request, "inbox_items.html", waiting=await _waiting(request))


async def inbox_count(request: web.Request) -> web.Response:
    return web.json_response({"waiting": await request.app[DB].count_status(HANDOFF)})


async def _conversation(request: web.Request) -> dict[str, Any] | None:
    store, customer = request.app[DB], request.match_info["customer"]
    state, contact = await store.load_state(customer), await store.contact(customer)
    if state is None and contact is None:
        return None
    last = await store.last_inbound(customer)
    now = time.time()
    bot = request.app[DISPATCHER].bot
    templates = sorted(n for n, variants in bot.replies.items()
                       if any(isinstance(v, TemplateSpec) for v in variants.values()))
    return {
        "customer": customer,
        "name": contact.name if contact else None,
        "state": state,
        "opted_out": await store.opted_out(customer),
        "window_open": window.is_open(last, now=now),
        "window_closes": window.closes_at(last),
        "messages": talk.entries(await store.console.messages(customer, SHOWN)),
        "actions": await store.console.actions(customer),
        "timers": [t for t in await store.timers(customer, limit=50) if t["status"] == "pending"][::-1],
        "templates": templates,
        "quick": request.app[SETTINGS].quick_answers,
    }


async def conversation_page(request: web.Request) -> web.Response:
    found = await _conversation(request)
    if found is None:
        return error(request, 404, "not_found", customer=request.match_info["customer"])
    return render(request, "conversation.html", page="customers", **found)


async def conversation_messages(request: web.Request) -> web.Response:
    found = await _conversation(request)
    if found is None:
        return error(request, 404, "not_found", customer=request.match_info["customer"])
    return render(request, "messages.html", **found)


def _back(customer: str) -> web.Response:
    return see_other(f"{PREFIX}/c/{customer}")


async def reply(request: web.Request) -> web.StreamResponse:
    """Send the person's text; refused with the reason outside the 24-hour window."""
    store, customer = request.app[DB], request.match_info["customer"]
    contact = await store.contact(customer)
    if contact is None:
        return error(request, 404, "not_found", customer=customer)
    text = str((await request.post()).get("text", "")).strip()
    if not text:
        return error(request, 400, "empty_reply")
    if not window.is_open(await store.last_inbound(customer), now=time.time()):
        return error(request, 409, "window_closed")
    message = outbound.Text(text)
    try:
        outbound.check_limits(message)
    except LimitError as err:
        return refusal(request, 400, str(err))
    await _send(request, contact, outbound.to_body(outbound.Recipient(contact.wa_id, contact.user_id), message),
                action="reply")
    return _back(customer)


async def template(request: web.Request) -> web.StreamResponse:
    """Send an approved template from the flows' `replies:` (the only thing allowed outside the window)."""
    store, customer = request.app[DB], request.match_info["customer"]
    contact = await store.contact(customer)
    if contact is None:
        return error(request, 404, "not_found", customer=customer)
    name = str((await request.post()).get("name", ""))
    dispatcher = request.app[DISPATCHER]
    bot = dispatcher.bot
    message = advance.named_reply(bot, Renderer(timezone=bot.timezone), await store.load_state(customer), name,
                                  customer=contact, now=time.time())
    if not isinstance(message, outbound.Template):
        return refusal(request, 400, f"{name!r} is not a template message in the flows' replies: section.")
    await _send(request, contact, outbound.to_body(outbound.Recipient(contact.wa_id, contact.user_id), message),
                action=f"template {name}")
    return _back(customer)


async def _send(request: web.Request, contact: inbound.Customer, body: dict[str, Any], *, action: str) -> None:
    who = staff(request).name
    rows = await request.app[DB].console.staff_reply(who, contact.key, body, now=time.time(), action=action)
    request.app[DISPATCHER].deliver(contact.key, rows)  # with several instances: by the one holding the customer
    request.app[DISPATCHER].hub.publish("replies_queued", contact.key, {"ids": [r.id for r in rows]})
    request.app[DISPATCHER].answered(contact)  # a person answered: the handoff's waiting time starts again
    log.info("console: %s sent a %s to %s", who, action, mask(contact.key))


async def resume(request: web.Request) -> web.StreamResponse:
    """Give the conversation back to the bot."""
    store, customer = request.app[DB], request.match_info["customer"]
    state, contact = await store.load_state(customer), await store.contact(customer)
    if state is None or state.status != HANDOFF:
        return error(request, 409, "nothing_to_give_back", customer=customer)
    who = staff(request).name
    await store.console.record_action(who, "resume", customer, None, now=time.time())
    request.app[DISPATCHER].resume(contact or inbound.Customer(customer))
    log.info("console: %s gave %s back to the bot", who, mask(customer))
    await _settled(request, customer)
    return _back(customer)


async def take_over(request: web.Request) -> web.StreamResponse:
    """A person takes the conversation; the bot pauses until it is given back."""
    store, customer = request.app[DB], request.match_info["customer"]
    contact = await store.contact(customer)
    if contact is None and await store.load_state(customer) is None:
        return error(request, 404, "not_found", customer=customer)
    who = staff(request).name
    await store.console.record_action(who, "take over", customer, None, now=time.time())
    request.app[DISPATCHER].take_over(contact or inbound.Customer(customer), reason=f"taken over by {who}")
    log.info("console: %s took over %s", who, mask(customer))
    await _settled(request, customer)
    return _back(customer)


async def _settled(request: web.Request, customer: str) -> None:
    """Let the dispatcher finish the customer's queued work (briefly), so the page shows the new state."""
    task = request.app[DISPATCHER].tasks.get(customer)
    if task is not None:
        await asyncio.wait({task}, timeout=2)
