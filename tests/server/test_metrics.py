"""GET /metrics: scraped from a real app and read back with prometheus_client's own text parser."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests import DEMO, demo_bot
from tests.apptools import admin
from tests.fakegraph import FakeGraph
from wabot.config import load_settings
from wabot.db.store import Store
from wabot.flows.model import Bot
from wabot.server.app import create_app
from wabot.server.keys import SENDER, STORE
from wabot.server.metrics import Metrics
from wabot.server.outbox import Sender
from wabot.server.webhook import sign
from wabot.state import HANDOFF, WAITING, State, Status

SECRET = "s3cret"
PHONE_ID = "123456"


@dataclass
class Meta:
    """A fake Graph API: `answers` are popped per send (status, body); empty means accept."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    hold: asyncio.Event | None = None  # sends wait on it when set

    async def messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.hold is not None:
            await self.hold.wait()
        if self.answers:
            status, answer = self.answers.pop(0)
            return web.json_response(answer, status=status)
        self.sent.append(body)
        return web.json_response({"messaging_product": "whatsapp", "messages": [{"id": f"wamid.out.{len(self.sent)}"}]})


def _bot() -> Bot:
    return demo_bot()


AppMaker = Callable[[], Awaitable[tuple[TestClient[web.Request, web.Application], Meta]]]


@pytest.fixture
async def make(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[AppMaker]:
    servers: list[TestServer] = []

    async def build() -> tuple[TestClient[web.Request, web.Application], Meta]:
        meta = Meta()
        graph = web.Application()
        graph.router.add_post(f"/v25.0/{PHONE_ID}/messages", meta.messages)
        server = TestServer(graph, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        folder = tmp_path / f"app{len(servers)}"
        folder.mkdir()
        config = folder / "config.yaml"
        config.write_text(
            f"whatsapp: {{token: t, phone_number_id: '{PHONE_ID}', app_secret: {SECRET}, verify_token: v,"
            f" api_url: '{str(server.make_url('')).rstrip('/')}'}}\n"
            f"database: {{path: '{folder / 'wabot.db'}'}}\n"
            "admin: {port: 0}\n"
            f"bot: {{flows: '{DEMO}'}}\n"
            "outbox: {max_attempts: 3}\n"
            "server: {max_body_bytes: 4096}\n", encoding="utf-8")
        client = await aiohttp_client(create_app(load_settings(config, environ={}), _bot()))
        return client, meta

    yield build
    for server in servers:
        await server.close()


def _message(n: int, text: str = "hi", wa_id: str = "84900000001") -> dict[str, Any]:
    return {"from": wa_id, "id": f"wamid.in.{n}", "timestamp": "1700000000", "type": "text", "text": {"body": text}}


def _payload(*, messages: tuple[dict[str, Any], ...] = (), statuses: tuple[dict[str, Any], ...] = ()) -> bytes:
    value: dict[str, Any] = {"messaging_product": "whatsapp",
                             "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_ID}}
    if messages:
        value["contacts"] = [{"profile": {"name": "Lan"}, "wa_id": m["from"]} for m in messages]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "999", "changes": [{"field": "messages", "value": value}]}]}).encode()


async def _post(client: TestClient[web.Request, web.Application], body: bytes, *, signed: bool = True) -> int:
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(SECRET if signed else "nope", body)}
    resp = await client.post("/webhook/whatsapp", data=body, headers=headers)
    return resp.status


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: TestClient[web.Request, web.Application]) -> Samples:
    """Every sample on the page: (name, sorted labels) -> value."""
    assert (await client.get("/metrics")).status == 404  # not on the public port
    async with admin(client) as session, session.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        page = await resp.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(page):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _until(check: Callable[[], bool], what: str) -> None:
    for _ in range(300):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting until {what}")


async def test_a_signed_message_moves_the_counters_and_the_latency_histograms(make: AppMaker) -> None:
    client, meta = await make()
    before = await scrape(client)
    assert value(before, "wabot_messages_received_total", type="text") == 0
    assert value(before, "wabot_webhook_seconds_count") == 0

    assert await _post(client, _payload(messages=(_message(1),))) == 200
    await _until(lambda: len(meta.sent) >= 1, "the reply reached the fake Graph API")
    await _until(lambda: client.app[SENDER].depth == 0, "the outbox is empty")
    after = await scrape(client)

    assert value(after, "wabot_messages_received_total", type="text") == 1
    assert value(after, "wabot_replies_sent_total") == len(meta.sent)
    assert value(after, "wabot_webhook_seconds_count") == 1
    assert value(after, "wabot_webhook_seconds_sum") > 0
    assert value(after, "wabot_end_to_end_seconds_count") == len(meta.sent)
    assert value(after, "wabot_end_to_end_seconds_bucket", le="+Inf") == len(meta.sent)
    assert value(after, "wabot_conversations_active") == 1  # the demo's main menu waits for an answer
    assert value(after, "wabot_outbox_depth") == 0


async def test_a_duplicate_delivery_is_not_counted_twice(make: AppMaker) -> None:
    client, _ = await make()
    body = _payload(messages=(_message(1),))
    assert await _post(client, body) == 200
    assert await _post(client, body) == 200
    samples = await scrape(client)
    assert value(samples, "wabot_messages_received_total", type="text") == 1
    assert value(samples, "wabot_webhook_seconds_count") == 2


async def test_statuses_are_counted_by_status(make: AppMaker) -> None:
    client, _ = await make()
    statuses = tuple({"id": "wamid.x", "status": s, "timestamp": "1700000001", "recipient_id": "84900000001"}
                     for s in ("sent", "delivered", "read"))
    assert await _post(client, _payload(statuses=statuses)) == 200
    assert await _post(client, _payload(statuses=statuses[2:])) == 200
    samples = await scrape(client)
    assert value(samples, "wabot_statuses_received_total", status="delivered") == 1
    assert value(samples, "wabot_statuses_received_total", status="read") == 2


async def test_rejected_webhooks_are_counted_by_reason(make: AppMaker) -> None:
    client, _ = await make()
    assert await _post(client, _payload(messages=(_message(1),)), signed=False) == 401
    assert await _post(client, b"{not json") == 400
    assert await _post(client, json.dumps({"object": "whatsapp_business_account", "entry": 7}).encode()) == 400
    assert await _post(client, b" " * 5000) == 413
    samples = await scrape(client)
    assert value(samples, "wabot_webhook_rejected_total", reason="signature") == 1
    assert value(samples, "wabot_webhook_rejected_total", reason="bad_json") == 1
    assert value(samples, "wabot_webhook_rejected_total", reason="bad_shape") == 1
    assert value(samples, "wabot_webhook_rejected_total", reason="too_large") == 1
    assert value(samples, "wabot_messages_received_total", type="text") == 0
    assert value(samples, "wabot_webhook_seconds_count") == 4


async def test_graph_errors_and_retries_are_counted(make: AppMaker) -> None:
    client, meta = await make()
    busy = {"error": {"message": "(#131016) Service unavailable", "type": "OAuthException", "code": 131016,
                      "fbtrace_id": "A1"}}
    gone = {"error": {"message": "(#131026) Message undeliverable", "type": "OAuthException", "code": 131026,
                      "error_data": {"details": "not a WhatsApp number"}, "fbtrace_id": "A2"}}
    meta.answers = [(503, busy), (400, gone)]
    assert await _post(client, _payload(messages=(_message(1),))) == 200
    await _until(lambda: not meta.answers, "both errors were answered")
    await _until(lambda: client.app[SENDER].depth == 0, "the outbox is empty")
    samples = await scrape(client)
    assert value(samples, "wabot_graph_errors_total", code="131016") == 1
    assert value(samples, "wabot_graph_errors_total", code="131026") == 1
    assert value(samples, "wabot_send_retries_total") == 1
    assert value(samples, "wabot_replies_failed_total") == 1


async def test_outbox_depth_and_age_of_the_oldest_reply_while_sends_hang(make: AppMaker) -> None:
    client, meta = await make()
    meta.hold = asyncio.Event()
    store = client.app[STORE]
    await store.queue("84900000009", [{"messaging_product": "whatsapp", "to": "+84900000009", "type": "text",
                                       "text": {"body": "old"}}], now=time.time() - 120)
    assert await _post(client, _payload(messages=(_message(1), _message(2, wa_id="84900000002")))) == 200
    await _until(lambda: client.app[SENDER].depth >= 2, "replies are queued")
    samples = await scrape(client)
    assert value(samples, "wabot_outbox_depth") == client.app[SENDER].depth
    assert 119 <= value(samples, "wabot_outbox_oldest_seconds") < 180
    meta.hold.set()
    await _until(lambda: client.app[SENDER].depth == 0, "the outbox is empty")
    assert value(await scrape(client), "wabot_outbox_depth") == 0


async def test_two_apps_in_one_process_keep_their_own_counts(make: AppMaker) -> None:
    first, _ = await make()
    second, _ = await make()
    assert await _post(first, _payload(messages=(_message(1),))) == 200
    assert value(await scrape(first), "wabot_messages_received_total", type="text") == 1
    assert value(await scrape(second), "wabot_messages_received_total", type="text") == 0


async def test_the_database_gauges_are_read_at_scrape_time(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "m.db")
    try:
        metrics = Metrics()
        metrics.watch(store=store, sender=Sender(store, None, rate=10, max_attempts=1, concurrency=1))
        statuses: tuple[Status, ...] = (HANDOFF, HANDOFF, WAITING)
        for n, status in enumerate(statuses):
            await store.finish_turn(seq=None, customer=f"8490000000{n}", state=State(status=status), bodies=[],
                                    now=1000.0)
        await store.queue("84900000009", [{"type": "text"}], now=1000.0)
        await metrics.refresh(now=1060.0)
        page = {s.name: s.value for f in text_string_to_metric_families(metrics.exposition().decode())
                for s in f.samples}
        assert page["wabot_handoffs_open"] == 2
        assert page["wabot_conversations_active"] == 1
        assert page["wabot_outbox_oldest_seconds"] == 60
    finally:
        await store.close()


async def test_label_values_from_meta_data_come_from_a_closed_set(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    """Issue 16 item 13: 4 POSTs x 5,000 made-up status strings gave 20,000 series and a 10.5 MB /metrics page."""
    from tests.apptools import envelope, post, start, text

    client = await start(aiohttp_client, tmp_path, fake)
    made_up = [{"id": f"wamid.s{i}", "status": f"bogus-{i}", "timestamp": "1764000000",
                "recipient_id": "84912345678"} for i in range(500)]
    body = envelope(text("84912345678", "hi"))
    value = body["entry"][0]["changes"][0]["value"]
    value["statuses"] = made_up
    value["messages"][0]["type"] = "made-up-type"
    assert await post(client, body) == 200
    async with admin(client) as session, session.get("/metrics") as resp:
        page = await resp.text()
    statuses = [s.labels["status"] for f in text_string_to_metric_families(page)
                if f.name == "wabot_statuses_received" for s in f.samples if s.name.endswith("_total")]
    types = [s.labels["type"] for f in text_string_to_metric_families(page)
             if f.name == "wabot_messages_received" for s in f.samples if s.name.endswith("_total")]
    assert statuses == ["other"] and types == ["other"]
    assert "bogus" not in page and "made-up" not in page
