"""create_app(settings, bot) -> web.Application: routes, and every resource as a cleanup context."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

from wabot.config import Settings, load_settings
from wabot.db import lock
from wabot.db.base import DB_ERRORS, Database, open_database
from wabot.db.postgres import PgStore
from wabot.db.store import Store
from wabot.errors import ConfigError
from wabot.flows.model import Bot
from wabot.server import adminsite, campaigns, handoffs, metrics, reload, shopevents, timers, webhook
from wabot.server.cluster import Cluster
from wabot.server.dispatch import Dispatcher
from wabot.server.effects import HttpRules, http_session
from wabot.server.hub import Hub
from wabot.server.keys import DISPATCHER, HUB, SENDER, SETTINGS, STORE
from wabot.server.media import MEDIA_FILES, MediaFiles
from wabot.server.outbox import Sender
from wabot.templates import Renderer
from wabot.whatsapp.graph import GraphClient

log = logging.getLogger(__name__)

OUTBOX_STUCK_SECONDS = 300.0  # retries back off for up to a minute each; longer than that is stuck
STORE_FAILURE_SHOWN = 60.0  # /readyz reports a webhook the database refused for this long


def create_app(settings: Settings, bot: Bot, *, admin: Sequence[adminsite.Extension] = ()) -> web.Application:
    """The whole server; resources open on startup and close, in reverse order, on shutdown.

    The public app answers Meta and health checks; the admin listener (`adminsite`) serves the rest,
    with what the layers above add to it (`admin`: the console's and the business API's routes).
    """
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    app[SETTINGS] = settings
    app[adminsite.ADMIN_APP] = adminsite.admin_app(settings, admin)
    app[metrics.METRICS] = meter = metrics.Metrics()
    path = settings.server.webhook_path
    app.router.add_get(path, webhook.verify)
    app.router.add_post(path, webhook.receiver(meter, limit=settings.server.max_connections))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)

    app[HUB] = hub = Hub()

    async def resources(app: web.Application) -> AsyncIterator[None]:
        store = await open_database(settings.database_target, synchronous=settings.synchronous,
                                    lease=settings.lease_seconds)
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(100, settings.outbox.concurrency)),
        )
        wa = settings.whatsapp
        graph = None
        if wa.dry_run:
            log.warning(
                "DRY-RUN MODE: WHATSAPP_TOKEN or WHATSAPP_PHONE_NUMBER_ID is not set, so replies are written "
                "to this log instead of being sent. Set both (see README) to go live."
            )
        else:
            graph = _graph(session, settings)
        if not wa.app_secret:
            log.warning("WHATSAPP_APP_SECRET is not set: webhook signatures are NOT checked (dry-run only)")
        sender = Sender(
            store, graph, rate=settings.outbox.rate_per_second,
            max_attempts=settings.outbox.max_attempts, concurrency=settings.outbox.concurrency, metrics=meter,
            retry_for=settings.outbox.retry_for, max_backoff=settings.outbox.max_backoff,
        )
        files = MediaFiles(settings.media, base_url=f"http://{settings.admin_host}:{settings.admin_port}",
                           graph=lambda: sender.graph)
        rules = HttpRules(frozenset(settings.http_private_hosts), settings.http_max_answer_bytes, files.open)
        steps_session = http_session(rules)  # http steps get their own session: private addresses refused
        dispatcher = Dispatcher(
            store=store, sender=sender, bot=bot, renderer=Renderer(timezone=bot.timezone), http=steps_session,
            stop_words=settings.bot.stop_words, start_words=settings.bot.start_words,
            notify=settings.handoff_notify, read_receipts=settings.whatsapp.read_receipts, metrics=meter,
            http_rules=rules, max_state_bytes=settings.bot.max_state_bytes,
            hub=hub,
        )
        app[STORE] = store
        app[SENDER] = sender
        app[DISPATCHER] = dispatcher
        app[MEDIA_FILES] = dispatcher.media = files
        sender.on_window_closed = dispatcher.reengage
        meter.watch(store=store, sender=sender)
        if isinstance(store, Store) and (lost := await store.campaigns.interrupted(now=time.time())):
            log.warning("%d campaign messages were being sent when wabot stopped; they are not sent again "
                        "(a campaign never sends twice) and count as unknown in the report", lost)
        cluster = None
        if isinstance(store, PgStore):  # other instances may share it: customers are claimed, not just taken
            cluster = Cluster(store, lease=settings.lease_seconds,
                              on_new_token=lambda: _new_token(settings.file, session, sender))
            dispatcher.cluster = cluster
        await sender.start(load=cluster is None)
        if cluster is None:
            await dispatcher.recover()
        else:
            await cluster.start(dispatcher, sender)  # takes over what no live instance holds, this one's past included
        purge = asyncio.create_task(_retention(store, settings.retention_days, files), name="retention")

        def hangup_signal() -> None:
            if _new_token(settings.file, session, sender) and cluster is not None:
                cluster.tell("token")  # the other instances read the new token too

        hangup = _on_hangup(hangup_signal)
        try:
            yield
        finally:
            hangup()
            purge.cancel()
            grace = settings.outbox.shutdown_grace
            if cluster is not None:
                await cluster.quiet()
            await dispatcher.drain(grace)
            await sender.stop(grace)
            if cluster is not None:
                await cluster.leave()
            await session.close()
            await steps_session.close()
            await store.close()
            log.info("stopped cleanly")

    app.cleanup_ctx.append(_one_server(settings))  # before the database opens: one server per SQLite file
    app.cleanup_ctx.append(resources)
    app.cleanup_ctx.append(reload.reloading)  # after resources: it swaps flows into the dispatcher
    app.cleanup_ctx.append(adminsite.serving)  # after resources: it shares them
    app.cleanup_ctx.append(shopevents.delivering)  # after resources: events to the shop's systems (events.url)
    app.cleanup_ctx.append(campaigns.running)  # after resources: campaigns fed into the outbox
    app.cleanup_ctx.append(handoffs.sweeping)  # after resources: it wakes handoffs nobody answered
    app.cleanup_ctx.append(timers.scheduling)  # after resources: the flows' reminders, timeouts and waits
    return app


def _one_server(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Hold the database's lock while serving; a second server on the same file stops with lock.InUseError."""

    async def locked(app: web.Application) -> AsyncIterator[None]:
        if settings.database_url:  # PostgreSQL: several instances may share it, by design
            yield
            return
        held = lock.acquire(settings.database, port=settings.server.port)
        try:
            yield
        finally:
            if held:
                held.release()

    return locked


def _graph(session: aiohttp.ClientSession, settings: Settings) -> GraphClient:
    wa = settings.whatsapp
    return GraphClient(
        session, base_url=wa.api_url, version=wa.api_version,
        phone_number_id=wa.phone_number_id, token=wa.token, timeout=wa.timeout,
    )


def _on_hangup(callback: Callable[[], None]) -> Callable[[], None]:
    """Run `callback` on SIGHUP (where the platform has it); return the function that stops listening."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, callback)
    except (AttributeError, NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
        return lambda: None

    def stop() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    return stop


def _new_token(config: Path, session: aiohttp.ClientSession, sender: Sender) -> bool:
    """SIGHUP: read the token from the config (and its environment variables) again and send what waited."""
    try:
        settings = load_settings(config)
    except ConfigError as err:
        log.error("SIGHUP: the settings were not reloaded: %s", err)
        return False
    if settings.whatsapp.dry_run:
        log.error("SIGHUP: the reloaded settings have no token or phone number id; nothing changed")
        return False
    log.info("SIGHUP: access token reloaded from %s", config)
    sender.resume(_graph(session, settings))
    return True


async def _retention(store: Database, days: float, files: MediaFiles | None = None, every: float = 3600
                     ) -> None:
    """Forget conversation history (and the files customers sent) older than the retention period, once an hour."""
    if days <= 0:
        return
    while True:
        removed = await store.purge(before=time.time() - days * 86400)
        if removed:
            log.info("removed %d history rows older than %g days (history.retention_days)", removed, days)
        if files is not None and (gone := await asyncio.to_thread(files.purge, before=time.time() - days * 86400)):
            log.info("removed %d files customers sent, older than %g days (history.retention_days)", gone, days)
        await asyncio.sleep(every)


async def healthz(request: web.Request) -> web.Response:
    """The process is up; `service` and `pid` let `wabot doctor` tell this wabot from whatever else listens."""
    return web.json_response({"status": "ok", "service": "wabot", "pid": os.getpid()})


async def readyz(request: web.Request) -> web.Response:
    """Ready to take traffic: say what is wrong, in plain words, if not."""
    problems: list[str] = []
    sender = request.app[SENDER]
    try:
        oldest = await request.app[STORE].oldest_queued()
    except DB_ERRORS as exc:
        oldest = None
        problems.append(
            f"The database {request.app[STORE].path} cannot be read ({exc}). "
            "Check that the file exists, is writable and the disk is not full, then restart wabot."
        )
    failed = request.app[metrics.METRICS].last_store_failure
    if failed is not None and time.time() - failed[0] < STORE_FAILURE_SHOWN:
        problems.append(
            f"A webhook could not be stored {time.time() - failed[0]:.0f} seconds ago ({failed[1]}), so Meta's "
            "events are refused with 503. Check that the disk is not full and the database file is writable."
        )
    if not request.app[DISPATCHER].bot.flows:
        problems.append("No conversation flows are loaded. Run `wabot validate` and fix the flow files.")
    if sender.paused:
        problems.append(sender.paused)
    elif oldest is not None and time.time() - oldest > OUTBOX_STUCK_SECONDS:
        problems.append(
            f"The oldest queued reply has waited {time.time() - oldest:.0f} seconds: replies are not going out. "
            "Look for send errors in the log."
        )
    body = {
        "status": "ok" if not problems else "degraded",
        "problems": problems,
        "dry_run": request.app[SETTINGS].whatsapp.dry_run,
        "outbox_depth": sender.depth,
        "outbox_retrying": sender.retrying,
    }
    return web.json_response(body, status=200 if not problems else 503)
