"""The webhook: GET answers Meta's verification; POST is raw body -> signature -> parse -> record -> 200."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time

from aiohttp import web

from wabot.db.base import DB_ERRORS
from wabot.errors import PayloadError
from wabot.server.keys import DISPATCHER, SENDER, SETTINGS, STORE
from wabot.server.metrics import METRICS, Handler, Metrics
from wabot.server.remote import client_address
from wabot.whatsapp.graph import WINDOW_CLOSED
from wabot.whatsapp.parse import count_updates, parse_webhook

log = logging.getLogger(__name__)


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256 is "sha256=" + hex HMAC-SHA256 of the raw body, keyed with the app secret."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    # aiohttp hands non-ASCII header bytes over as surrogate escapes; compare bytes, never fail on them
    return hmac.compare_digest(expected, header[7:].strip().lower().encode("utf-8", "surrogateescape"))


def sign(secret: str, body: bytes) -> str:
    """The header value Meta would send for `body` (for tests, tools and the benchmark)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def verify(request: web.Request) -> web.Response:
    """Meta's GET check when the callback URL is saved: echo hub.challenge if the verify token matches."""
    token = request.app[SETTINGS].whatsapp.verify_token
    q = request.query
    given = q.get("hub.verify_token", "")
    if not token:
        log.warning("webhook verification refused: WHATSAPP_VERIFY_TOKEN is not set")
        return web.Response(status=403, text="verification failed")
    if q.get("hub.mode") != "subscribe" or not hmac.compare_digest(given.encode(), token.encode()):
        log.warning("webhook verification refused: wrong hub.mode or hub.verify_token")
        return web.Response(status=403, text="verification failed")
    log.info("webhook verified by Meta")
    return web.Response(text=q.get("hub.challenge", ""), content_type="text/plain")


def receiver(metrics: Metrics, *, limit: int) -> Handler:
    """The POST handler: `receive`, timed, with at most `limit` bodies being read at once (slow senders cannot
    pile up; the rest are answered 503 and Meta delivers them again).

    A wrapper of the one route rather than an aiohttp middleware: a middleware costs every request a chain of
    calls, and this is the only POST the public listener serves (issue 14 item 5).
    """
    reading = 0

    async def post(request: web.Request) -> web.StreamResponse:
        nonlocal reading
        if reading >= limit:
            log.warning("webhook refused: %d requests already being read (server.max_connections)", limit)
            metrics.rejected("busy")
            return await answer_and_close(request, 503, "busy; try again")
        reading += 1
        started = time.perf_counter()
        try:
            return await receive(request, started=started)
        finally:
            reading -= 1
            metrics.answered(time.perf_counter() - started)

    return post


async def receive(request: web.Request, *, started: float) -> web.StreamResponse:
    """Meta's event POST (`started`: perf_counter() when it came). Answers 200 only once the events are committed;
    processing follows after."""
    settings = request.app[SETTINGS]
    metrics = request.app[METRICS]
    try:
        if request.content.is_eof():  # the whole body came with the headers (most webhooks): no clock needed
            body = await request.read()
        else:
            async with asyncio.timeout(settings.server.body_timeout):
                body = await request.read()
    except TimeoutError:  # a slow sender holds a connection (and a file) for as long as it likes otherwise
        log.warning("webhook refused: the body did not arrive within server.body_timeout_seconds (%g s)",
                    settings.server.body_timeout)
        metrics.rejected("slow_body")
        return await answer_and_close(request, 408, "the body took too long")
    except web.HTTPRequestEntityTooLarge:
        log.warning("webhook refused: body larger than server.max_body_bytes (%d)", settings.server.max_body_bytes)
        metrics.rejected("too_large")
        return web.Response(status=413, text="body too large")
    secret = settings.whatsapp.app_secret
    if secret and not signature_ok(secret, body, request.headers.get("X-Hub-Signature-256")):
        log.warning("webhook refused: missing or wrong X-Hub-Signature-256 (from %s)", client_address(request))
        metrics.rejected("signature")
        return web.Response(status=401, text="invalid signature")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        log.warning("webhook refused: the body is not valid JSON (%s)", _short(exc))
        metrics.rejected("bad_json")
        return web.Response(status=400, text="body is not valid JSON")
    count = count_updates(payload)  # before parsing: a huge batch is refused without the work
    if count > settings.server.max_batch:
        log.warning("webhook refused: %d updates in one POST, more than server.max_batch", count)
        metrics.rejected("too_many")
        return web.Response(status=413, text="too many updates in one request")
    try:
        batch = parse_webhook(payload, body=body)
    except PayloadError as exc:
        log.warning("webhook refused: %s%s", exc, f" at {exc.where}" if exc.where else "")
        metrics.rejected("bad_shape")
        return web.Response(status=400, text=str(exc))
    for err in batch.errors:
        log.warning("WhatsApp reported error %d: %s %s", err.code, err.title, err.details)
    for status in batch.statuses:
        if status.status == "failed":
            detail = "; ".join(f"{e.code} {e.title}: {e.details or e.message}" for e in status.errors)
            log.warning("message %s could not be delivered: %s", status.id, detail or "no reason given")
            if any(e.code == WINDOW_CLOSED for e in status.errors):
                request.app[SENDER].window_closed(status.recipient_id)
    try:
        fresh = await request.app[STORE].record(batch.messages, batch.statuses, now=time.time())
    except DB_ERRORS as exc:  # not ours to keep: Meta delivers it again later
        log.error("webhook not saved, the database refused it (%s); Meta will deliver it again. Check the disk.", exc)
        metrics.rejected("store_failed")
        metrics.store_failed(str(exc))
        return web.Response(status=503, text="cannot store the events now")
    metrics.recorded(fresh, batch.statuses, at=started)
    dispatcher = request.app[DISPATCHER]
    for s in batch.statuses:
        dispatcher.hub.publish("status", s.recipient_id, {"wamid": s.id, "status": s.status})
    dispatcher.submit(fresh)
    return web.Response(text="ok")


async def answer_and_close(request: web.Request, status: int, text: str) -> web.StreamResponse:
    """Answer, then drop the connection at once (aiohttp would otherwise wait for the rest of the body)."""
    response = web.Response(status=status, text=text, headers={"Connection": "close"})
    await response.prepare(request)
    await response.write_eof()
    if request.transport is not None:
        request.transport.close()
    return response


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 120 else text[:117] + "..."
