"""Events to the shop's systems through a real loopback receiver: signed, in order, retried, dead-lettered, durable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.api import bearer, started
from tests.api.test_messages import LAN, MAI, wrote
from tests.apptools import PHONE_ID, admin, envelope, post, rows, settle, text
from tests.fakegraph import FakeGraph
from wabot.server import shopevents
from wabot.server.webhook import signature_ok

SECRET = "shop-secret"


@dataclass
class Shop:
    """The shop's event receiver: answers `failures` 500s first, then takes events; keeps what it took."""

    failures: int = 0
    calls: int = 0
    taken: list[dict[str, Any]] = field(default_factory=list)
    forged: int = 0
    server: TestServer | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    hold: asyncio.Event | None = None  # set: each request hangs until it is set, then fails (503)

    async def receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.calls += 1
        self.changed.set()
        if self.hold is not None:
            await self.hold.wait()
            return web.Response(status=503)
        if not signature_ok(SECRET, raw, request.headers.get(shopevents.SIGNATURE_HEADER)):
            self.forged += 1
            return web.Response(status=401)
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=500)
        self.taken.append(json.loads(raw))
        self.changed.set()
        return web.Response(status=204)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/events"))

    async def wait(self, count: int, within: float = 10.0) -> list[dict[str, Any]]:
        await self.until(lambda: len(self.taken) >= count, within)
        return self.taken

    async def until(self, done: Callable[[], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not done():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    receiver = Shop()
    app = web.Application()
    app.router.add_post("/events", receiver.receive)
    receiver.server = TestServer(app, host="127.0.0.1")
    await receiver.server.start_server()
    yield receiver
    await receiver.server.close()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shopevents, "backoff", lambda attempt: 0.05 * attempt)


def events(shop: Shop, attempts: int = 10) -> str:
    return f"events: {{url: '{shop.url}', secret: {SECRET}, max_attempts: {attempts}}}\n"


async def test_events_are_signed_in_order_and_retried_through_a_failing_receiver(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, shop: Shop, db_target: str
) -> None:
    shop.failures = 3
    client, key = await started(aiohttp_client, tmp_path, fake, events(shop), db=db_target)
    await wrote(client, fake, LAN)
    async with admin(client) as s:
        resp = await s.post("/api/v1/flows/order_shipped/start", headers=bearer(key),
                            json={"to": LAN, "vars": {"code": "A123", "carrier": "GHN"}})
        assert resp.status == 202
        await settle(client)
    for words in ("Có", "9 giờ sáng", "STOP"):
        assert await post(client, envelope(text(LAN, words))) == 200
        await settle(client)
    taken = await shop.wait(2)
    assert shop.forged == 0 and shop.calls >= 5
    assert [e["type"] for e in taken] == ["flow_finished", "opted_out"]
    finished = taken[0]
    assert finished["customer"] == LAN and finished["data"]["flow"] == "confirmed"
    saved = finished["data"]["vars"]
    assert saved | {"code": "A123", "carrier": "GHN", "slot": "9 giờ sáng"} == saved
    assert int(taken[0]["id"]) < int(taken[1]["id"])


async def test_a_handoff_opening_and_closing_reach_the_shop(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, shop: Shop, db_target: str
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake, events(shop) + "admin: {token: a-long-enough-token}\n",
                                db=db_target)
    await wrote(client, fake, LAN)
    async with admin(client) as s:
        assert (await s.post("/api/v1/flows/human/start", headers=bearer(key), json={"to": LAN})).status == 202
        await settle(client)
        resp = await s.post(f"/admin/conversations/{LAN}/resume",
                            headers={"Authorization": "Bearer a-long-enough-token"})
        assert resp.status == 202
        await settle(client)
    taken = await shop.wait(3)
    assert [e["type"] for e in taken] == ["handoff_opened", "handoff_closed", "flow_finished"]
    assert taken[0]["data"]["reason"]


async def test_an_event_the_receiver_never_takes_is_dead_lettered_visible_and_can_be_sent_again(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, shop: Shop, db_target: str
) -> None:
    shop.failures = 1000
    client, key = await started(aiohttp_client, tmp_path, fake, events(shop, attempts=3), db=db_target)
    await wrote(client, fake, MAI)
    assert await post(client, envelope(text(MAI, "STOP"))) == 200
    await settle(client)
    async with admin(client) as s:
        async with asyncio.timeout(10):
            dead: list[Any] = []
            while not dead:  # polling the API, as the shop's operator would
                await asyncio.sleep(0.05)
                dead = (await (await s.get("/api/v1/events/dead", headers=bearer(key))).json())["events"]
        assert dead[0]["type"] == "opted_out" and dead[0]["attempts"] == 3
        assert "answered 500" in dead[0]["error"]
        shop.failures = 0
        resp = await s.post(f"/api/v1/events/{dead[0]['id']}/retry", headers=bearer(key))
        assert resp.status == 202
        # the next event (flow_finished) may go first: it was not dead, only waiting behind the dead one
        await shop.until(lambda: "opted_out" in [e["type"] for e in shop.taken])
        assert (await s.post(f"/api/v1/events/{dead[0]['id']}/retry", headers=bearer(key))).status == 404


async def test_a_delivery_cut_short_by_a_clean_stop_is_due_at_once_after_the_restart(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, shop: Shop, db_target: str
) -> None:
    held = shop.hold = asyncio.Event()
    client, _ = await started(aiohttp_client, tmp_path, fake, events(shop), db=db_target)
    await wrote(client, fake, MAI)
    assert await post(client, envelope(text(MAI, "STOP"))) == 200
    await shop.until(lambda: shop.calls >= 1)  # its delivery hangs in the receiver
    await client.close()  # a clean stop in the middle of it
    shop.hold = None
    held.set()
    await started(aiohttp_client, tmp_path, fake, events(shop), name="after-restart", db=db_target)
    taken = await shop.wait(1, within=10)  # at once, not when the stopped instance's 30-s claim runs out
    assert [e["type"] for e in taken] == ["opted_out"]


async def test_events_kept_while_the_receiver_was_down_go_out_after_a_restart(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, shop: Shop, db_target: str
) -> None:
    shop.failures = 1000
    client, _ = await started(aiohttp_client, tmp_path, fake, events(shop), db=db_target)
    await wrote(client, fake, MAI)
    for words in ("STOP", "START"):
        assert await post(client, envelope(text(MAI, words))) == 200
        await settle(client)
    await shop.until(lambda: shop.calls >= 2)
    await client.close()
    shop.failures = 0
    again, _ = await started(aiohttp_client, tmp_path, fake, events(shop), name="after-restart", db=db_target)
    taken = await shop.wait(3)
    assert [e["type"] for e in taken] == ["opted_out", "flow_finished", "opted_in"]
    await again.close()


async def test_without_an_events_url_nothing_is_kept(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, _ = await started(aiohttp_client, tmp_path, fake, db=db_target)
    await wrote(client, fake, MAI)
    assert await post(client, envelope(text(MAI, "STOP"))) == 200
    await settle(client)
    assert await rows(client, "SELECT COUNT(*) FROM events") == [(0,)]


async def test_a_reply_meta_reports_failed_later_by_status_webhook_is_told_once(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, shop: Shop, db_target: str
) -> None:
    client, _ = await started(aiohttp_client, tmp_path, fake, events(shop), db=db_target)
    await wrote(client, fake, MAI)
    (row_id, wamid), *_ = await rows(client, "SELECT id, wamid FROM outbox WHERE wamid IS NOT NULL ORDER BY id")
    failed = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": PHONE_ID},
              "statuses": [{"id": wamid, "status": "failed", "timestamp": "1764000001", "recipient_id": MAI,
                            "errors": [{"code": 131026, "title": "Message undeliverable",
                                        "error_data": {"details": "the number is not on WhatsApp"}}]}]}
    for _ in range(3):  # Meta delivers a webhook again when unsure: the shop hears it once
        assert await post(client, envelope(failed)) == 200
    assert await post(client, envelope(text(MAI, "STOP"))) == 200  # a later event, to know the earlier one is all
    await settle(client)
    await shop.until(lambda: "opted_out" in [e["type"] for e in shop.taken])
    told = [e for e in shop.taken if e["type"] == "reply_failed"]
    assert len(told) == 1 and told[0]["customer"] == MAI
    assert told[0]["data"] == {"id": str(row_id), "code": 131026, "wamid": wamid,
                               "error": "Message undeliverable: the number is not on WhatsApp"}
    assert await rows(client, f"SELECT status, error_code FROM outbox WHERE id = {row_id}") == [("failed", 131026)]
