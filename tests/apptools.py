"""Helpers for end-to-end tests: a real app on loopback, FakeGraph behind it, signed Meta-shaped webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests import DEMO, configured_bot
from tests.fakegraph import FakeGraph
from wabot.config import load_settings
from wabot.db.postgres import PgStore
from wabot.server.adminsite import ADMIN_URL, Extension
from wabot.server.app import create_app
from wabot.server.keys import STORE
from wabot.server.webhook import sign

SECRET = "app-secret"
VERIFY = "verify-me"
PHONE_ID = "123456"
_ids = itertools.count()

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


def config(tmp_path: Path, graph_url: str, extra: str = "", *, token_file: Path | None = None,
           whatsapp: str = "", db: str = "", flows: Path | None = None) -> Path:
    """A config for tests; `whatsapp` adds keys to the whatsapp section ("read_receipts: true, ").

    `db` is the database: an SQLite file or a postgresql:// URL (empty: wabot.db in tmp_path); `flows` the flows
    (default: the demo shop).
    """
    path = tmp_path / "config.yaml"
    # the admin listener on a free port, whatever else the test puts in its admin section
    extra = extra.replace("admin: {", "admin: {port: 0, ") if "admin: {" in extra else extra + "admin: {port: 0}\n"
    file = f" token_file: '{token_file}'," if token_file else ""
    file += f" {whatsapp}" if whatsapp else ""
    path.write_text(
        f"whatsapp: {{token: '${{WHATSAPP_TOKEN:-test-token}}',{file} phone_number_id: '{PHONE_ID}',"
        f" app_secret: {SECRET}, verify_token: {VERIFY}, api_url: '{graph_url}', timeout: 2}}\n"
        f"database: {{path: '{tmp_path / 'wabot.db'}', url: '{db}'}}\n"
        f"bot: {{flows: '{flows or DEMO}'}}\n"
        "outbox: {rate_per_second: 1000, shutdown_grace_seconds: 2}\n" + extra,
        encoding="utf-8",
    )
    return path


async def start(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, extra: str = "", env: dict[str, str] | None = None,
    token_file: Path | None = None, whatsapp: str = "", db: str = "", admin: Sequence[Extension] = (),
    flows: Path | None = None,
) -> Client:
    settings = load_settings(config(tmp_path, fake.url, extra, token_file=token_file, whatsapp=whatsapp, db=db,
                                    flows=flows))
    bot = configured_bot(replace(settings.bot, env=None), environ=env)  # a test hands the flows `env` itself
    client: Client = await aiohttp_client(create_app(settings, bot, admin=admin))
    return client


async def rows(client: Client, sql: str) -> list[tuple[Any, ...]]:
    """What `sql` selects from the running app's database, SQLite or PostgreSQL."""
    store = client.app[STORE]
    if isinstance(store, PgStore):
        return [tuple(r) for r in await store.pool.fetch(sql)]
    with contextlib.closing(sqlite3.connect(store.path)) as db:
        return db.execute(sql).fetchall()


def message(wa_id: str, content: dict[str, Any], *, mid: str | None = None, name: str = "Lan") -> dict[str, Any]:
    """One `value` carrying one inbound message (content: {"type": "text", "text": {...}} and so on)."""
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "84281234567", "phone_number_id": PHONE_ID},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": mid or f"wamid.in.{next(_ids)}", "timestamp": "1764000000", **content}],
    }


def text(wa_id: str, body: str, **kw: Any) -> dict[str, Any]:
    return message(wa_id, {"type": "text", "text": {"body": body}}, **kw)


def tap(wa_id: str, reply_id: str, title: str, kind: str = "button_reply", **kw: Any) -> dict[str, Any]:
    interactive = {"type": kind, kind: {"id": reply_id, "title": title}}
    return message(wa_id, {"type": "interactive", "interactive": interactive}, **kw)


def envelope(*values: dict[str, Any]) -> dict[str, Any]:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": v} for v in values]}]}


async def post(client: Client, payload: Any, *, secret: str | None = SECRET, raw: bytes | None = None) -> int:
    """POST a webhook signed like Meta does (json.dumps escapes non-ASCII, as Meta's bodies do)."""
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"X-Hub-Signature-256": sign(secret, body)} if secret else {}
    resp = await client.post("/webhook/whatsapp", data=body, headers=headers)
    await resp.read()
    return resp.status


async def settle(client: Client, within: float = 5.0) -> None:
    """Wait until every inbound message is processed, the outbox is empty and what was sent is recorded."""
    from wabot.server.keys import DISPATCHER, SENDER

    sender, dispatcher = client.app[SENDER], client.app[DISPATCHER]
    async with asyncio.timeout(within):
        # the sends of one pass are committed together a moment later (Sender._flush_sent): wait for that too; on
        # PostgreSQL replies queued outside a turn reach the sender through the cluster's claim, in the background
        while (dispatcher.tasks or sender.depth or sender.sent or sender.flushes  # noqa: ASYNC110
               or (dispatcher.cluster is not None and dispatcher.cluster.tasks)):
            await asyncio.sleep(0.01)
        await asyncio.gather(*client.app[SENDER].flushes)  # what was sent is recorded (PostgreSQL takes longer)


@contextlib.asynccontextmanager
async def admin(client: Client) -> AsyncIterator[aiohttp.ClientSession]:
    """A session on the app's admin listener (desk API, metrics), where it really listens."""
    async with aiohttp.ClientSession(base_url=client.app[ADMIN_URL]) as session:
        yield session
