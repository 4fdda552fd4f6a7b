"""/healthz and /readyz: ready when everything works, degraded with the reason in plain words when not."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests import DEMO, demo_bot
from wabot.config import load_settings
from wabot.server.app import create_app
from wabot.server.keys import DISPATCHER, SENDER, STORE
from wabot.server.webhook import sign

EXPIRED = {"error": {"message": "Error validating access token: Session has expired on Tuesday.",
                     "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "AbC"}}

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def meta() -> AsyncIterator[tuple[TestServer, list[int]]]:
    """A fake Graph API that refuses every send with `expired token` while the list holds a 1."""
    expired: list[int] = []

    async def messages(request: web.Request) -> web.Response:
        await request.read()
        if expired:
            return web.json_response(EXPIRED, status=401)
        return web.json_response({"messaging_product": "whatsapp", "messages": [{"id": "wamid.out"}]})

    graph = web.Application()
    graph.router.add_post("/v25.0/123456/messages", messages)
    server = TestServer(graph, host="127.0.0.1")
    async with server:
        yield server, expired


@pytest.fixture
async def client(tmp_path: Path, meta: tuple[TestServer, list[int]], aiohttp_client: Any) -> Client:
    config = tmp_path / "config.yaml"
    config.write_text(
        "whatsapp: {token: t, phone_number_id: '123456', app_secret: s, verify_token: v,"
        f" api_url: '{str(meta[0].make_url('')).rstrip('/')}'}}\n"
        f"database: {{path: '{tmp_path / 'wabot.db'}'}}\n"
        "admin: {port: 0}\n"
        f"bot: {{flows: '{DEMO}'}}\n", encoding="utf-8")
    c: Client = await aiohttp_client(create_app(load_settings(config, environ={}), demo_bot()))
    return c


async def _ready(client: Client) -> tuple[int, dict[str, Any]]:
    resp = await client.get("/readyz")
    return resp.status, await resp.json()


async def test_healthz_says_the_process_is_up(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "service": "wabot", "pid": os.getpid()}


async def test_ready_when_all_is_well(client: Client) -> None:
    status, body = await _ready(client)
    assert (status, body["status"], body["problems"]) == (200, "ok", [])
    assert body["dry_run"] is False


async def test_an_expired_token_makes_it_degraded_until_a_new_one_arrives(
    client: Client, meta: tuple[TestServer, list[int]]
) -> None:
    meta[1].append(1)
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "9", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "123456"},
            "contacts": [{"profile": {"name": "Lan"}, "wa_id": "84900000001"}],
            "messages": [{"from": "84900000001", "id": "wamid.in.1", "timestamp": "1700000000", "type": "text",
                          "text": {"body": "hi"}}]}}]}]}).encode()
    resp = await client.post("/webhook/whatsapp", data=body, headers={"X-Hub-Signature-256": sign("s", body)})
    assert resp.status == 200
    sender = client.app[SENDER]
    for _ in range(300):
        if sender.paused:
            break
        await asyncio.sleep(0.02)
    status, ready = await _ready(client)
    assert (status, ready["status"]) == (503, "degraded")
    assert ready["problems"] == [sender.paused]
    assert "token" in ready["problems"][0].lower()
    assert ready["outbox_depth"] >= 1


async def test_a_closed_database_makes_it_degraded(client: Client) -> None:
    await client.app[STORE].close()
    status, body = await _ready(client)
    assert (status, body["status"]) == (503, "degraded")
    assert len(body["problems"]) == 1
    assert "database" in body["problems"][0] and "cannot be read" in body["problems"][0]


async def test_a_reply_waiting_too_long_while_not_paused_means_the_outbox_is_stuck(client: Client) -> None:
    await client.app[STORE].queue("84900000009", [{"type": "text"}], now=time.time() - 3600)
    status, body = await _ready(client)
    assert status == 503
    assert len(body["problems"]) == 1
    assert "waited 3600 seconds" in body["problems"][0]


async def test_a_recent_queued_reply_is_not_stuck(client: Client) -> None:
    await client.app[STORE].queue("84900000009", [{"type": "text"}], now=time.time() - 5)
    status, body = await _ready(client)
    assert (status, body["problems"]) == (200, [])


async def test_no_flows_loaded_makes_it_degraded(client: Client) -> None:
    dispatcher = client.app[DISPATCHER]
    dispatcher.bot = replace(dispatcher.bot, flows={})
    status, body = await _ready(client)
    assert status == 503
    assert body["problems"] == ["No conversation flows are loaded. Run `wabot validate` and fix the flow files."]
