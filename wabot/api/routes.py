"""The business API's endpoints under /api/v1: send, look up, start a flow, and the dead-lettered events."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from wabot.api import campaigns, compose
from wabot.api.keys import API_KEY, store
from wabot.api.problems import Problem, dumps
from wabot.db import codec
from wabot.engine import advance
from wabot.logs import mask
from wabot.server.keys import DISPATCHER, SETTINGS
from wabot.state import HANDOFF
from wabot.whatsapp import inbound, outbound, window

log = logging.getLogger(__name__)

__all__ = ["add_routes"]

BASE = "/api/v1"


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"{BASE}/messages", send_message)
    app.router.add_get(f"{BASE}/messages/{{id}}", get_message)
    app.router.add_post(f"{BASE}/flows/{{flow}}/start", start_flow)
    app.router.add_get(f"{BASE}/events/dead", dead_events)
    app.router.add_post(f"{BASE}/events/{{id}}/retry", retry_event)
    campaigns.add_routes(app, BASE)


async def send_message(request: web.Request) -> web.Response:
    """Queue a message the business starts; free-form only inside the 24-hour window."""
    raw, data = await _body(request)
    idem = _idempotency(request, raw)
    if idem is not None and (seen := await store(request).api.remembered(idem[0], idem[1])) is not None:
        return _replay(idem, seen)
    language = request.app[DISPATCHER].bot.default_language
    to = compose.recipient(data)
    message = compose.message(data, language=language)
    fallback = data.get("fallback_template")
    await _not_opted_out(request, to)
    if not isinstance(message, outbound.Template) and not await _window_open(request, to):
        if fallback is None:
            raise _closed(to, "a free-form message", 'name an approved template ("template") or give '
                          '"fallback_template" to send when the window is closed')
        message = compose.template(fallback, language=language)
    body = outbound.to_body(outbound.Recipient(to), message)
    row, status, answer = await store(request).api.send(to, body, now=time.time(), idempotency=idem)
    if row is not None:
        request.app[DISPATCHER].deliver(to, [row])  # with several instances: by the one holding the customer
        log.info("business API (%s) queued a %s for %s as message %d", request[API_KEY], body["type"], mask(to),
                 row.id)
    return web.json_response(answer, status=status, dumps=dumps)


async def get_message(request: web.Request) -> web.Response:
    """Where a message is: queued, sent, delivered, read or failed (with Meta's code and reason)."""
    try:
        row_id = int(request.match_info["id"])
    except ValueError:
        row_id = -1
    found = await store(request).api.message(row_id) if row_id >= 0 else None
    if found is None:
        raise Problem(404, "not_found", f"There is no message with id {request.match_info['id']}.")
    error = {"code": found["error_code"], "message": found["error"]} if found["status"] == "failed" else None
    return web.json_response({
        "id": str(found["id"]), "to": found["to"], "status": found["status"], "wamid": found["wamid"],
        "error": error, "created_at": _iso(found["created_at"]), "updated_at": _iso(found["updated_at"]),
    }, dumps=dumps)


async def start_flow(request: web.Request) -> web.Response:
    """Start a flow for a customer with variables, as if the customer had written; 202 once it is queued."""
    raw, data = await _body(request)
    idem = _idempotency(request, raw)
    db = store(request)
    if idem is not None and (seen := await db.api.remembered(idem[0], idem[1])) is not None:
        return _replay(idem, seen)
    dispatcher = request.app[DISPATCHER]
    flow = request.match_info["flow"]
    if flow not in dispatcher.bot.flows:
        raise Problem(404, "not_found", f"There is no flow named {flow!r}; the flows are: "
                      f"{', '.join(sorted(dispatcher.bot.flows))}.")
    to = compose.recipient(data)
    variables = data.get("vars", {})
    if not isinstance(variables, dict) or not all(isinstance(k, str) for k in variables):
        raise Problem(400, "bad_request", '"vars" must be an object of named values, like {"code": "A123"}.')
    if missing := [name for name in dispatcher.bot.flows[flow].inputs if name not in variables]:
        raise Problem(400, "bad_request", f"The flow {flow!r} needs {', '.join(missing)} in \"vars\" (its inputs: "
                      f"{', '.join(dispatcher.bot.flows[flow].inputs)}); nothing was started.")
    await _not_opted_out(request, to)
    state = await db.load_state(to)
    if state is not None and state.status == HANDOFF:
        raise Problem(409, "in_handoff", f"{to} is talking with a person (a handoff); the flow was not started. "
                      "Try again once the conversation is given back to the bot.")
    contact = await db.contact(to) or inbound.Customer(to)
    opening = None
    if not await _window_open(request, to):
        part = data.get("template")
        if part is not None:
            opening = compose.template(part, language=dispatcher.bot.default_language)
        else:  # the flow's own opens_with, written with the variables the flow starts with
            known = {**(state.vars if state is not None else {}), **variables}
            opening = advance.opening(dispatcher.bot, dispatcher.renderer, flow, known, customer=contact,
                                      now=time.time())
        if opening is None:
            raise _closed(to, f"the flow {flow!r}", 'give "template": the approved template that opens the '
                          "conversation when the window is closed (or give the flow one with 'opens_with:')")
    answer = {"to": to, "flow": flow, "status": "started", "opened_with_template": opening is not None}
    started = codec.Started(contact, flow, dict(variables), opening)
    seq, status, answer = await db.api.start_flow(started, answer=answer, now=time.time(), idempotency=idem)
    if seq is None:  # a request with the same Idempotency-Key was kept meanwhile
        return web.json_response(answer, status=status, dumps=dumps, headers={"Idempotent-Replayed": "true"})
    dispatcher.submit([(seq, started)])
    log.info("business API (%s) started flow %s for %s", request[API_KEY], flow, mask(to))
    return web.json_response(answer, status=202, dumps=dumps)


async def dead_events(request: web.Request) -> web.Response:
    """Events the shop's receiver did not take after every try."""
    events = await store(request).api.dead_events(limit=1000)
    for e in events:
        e["created_at"], e["updated_at"] = _iso(e["created_at"]), _iso(e["updated_at"])
        e["id"] = str(e["id"])
    return web.json_response({"events": events}, dumps=dumps)


async def retry_event(request: web.Request) -> web.Response:
    """Send a dead-lettered event again."""
    try:
        event_id = int(request.match_info["id"])
    except ValueError:
        event_id = -1
    if event_id < 0 or not await store(request).api.retry_event(event_id, now=time.time()):
        raise Problem(404, "not_found", f"There is no dead-lettered event with id {request.match_info['id']}.")
    return web.json_response({"id": str(event_id), "status": "pending"}, status=202, dumps=dumps)


# --- the rules every send obeys ------------------------------------------------------------------


async def _not_opted_out(request: web.Request, to: str) -> None:
    if await store(request).opted_out(to):
        words = ", ".join(request.app[SETTINGS].bot.start_words) or "a start word"
        raise Problem(409, "opted_out", f"{to} asked not to get messages the business starts (a stop word); "
                      f"nothing was sent. They opt back in by writing {words}.")


async def _window_open(request: web.Request, to: str) -> bool:
    return window.is_open(await store(request).last_inbound(to), now=time.time())


def _closed(to: str, what: str, fix: str) -> Problem:
    return Problem(409, "window_closed", f"{to} has not written in the last 24 hours, so WhatsApp allows only an "
                   f"approved template, not {what}; nothing was sent. To reach them, {fix}.")


async def _body(request: web.Request) -> tuple[bytes, dict[str, Any]]:
    raw = await request.read()
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise Problem(400, "bad_request", 'The body must be a JSON object, like {"to": "84912345678", "text": "..."}.')
    return raw, data


def _idempotency(request: web.Request, raw: bytes) -> tuple[str, str, str] | None:
    """(api key, Idempotency-Key, fingerprint of this request) when the header is given."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return None
    if len(key) > 255:
        raise Problem(400, "bad_request", "The Idempotency-Key header must be at most 255 characters.")
    fingerprint = hashlib.sha256(request.path.encode() + b"\0" + raw).hexdigest()
    return request[API_KEY], key, fingerprint


def _replay(idem: tuple[str, str, str], seen: tuple[str, int, Any]) -> web.Response:
    fingerprint, status, answer = seen
    if fingerprint != idem[2]:
        raise Problem(422, "idempotency_key_reused", f"The Idempotency-Key {idem[1]!r} was used for a different "
                      "request; use a new key for a new request.")
    return web.json_response(answer, status=status, dumps=dumps, headers={"Idempotent-Replayed": "true"})


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
