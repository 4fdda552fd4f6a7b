"""POST/GET /api/v1/messages against the fake Graph API: the window, fallback, opt-out, idempotency, statuses."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from tests.api import bearer, started
from tests.apptools import Client, admin, envelope, post, settle, text
from tests.fakegraph import FakeGraph

LAN = "84911111111"  # writes first: her window is open
MAI = "84922222222"  # never wrote: her window is closed
SHIPPED = {"name": "order_shipped", "language": "vi", "parameters": ["A123", "GHN"]}


async def send(s: aiohttp.ClientSession, key: str, body: Any, **headers: str) -> tuple[int, Any]:
    resp = await s.post("/api/v1/messages", json=body, headers={**bearer(key), **headers})
    return resp.status, await resp.json()


async def status_of(s: aiohttp.ClientSession, key: str, message_id: str) -> Any:
    resp = await s.get(f"/api/v1/messages/{message_id}", headers=bearer(key))
    assert resp.status == 200
    return await resp.json()


async def wrote(client: Client, fake: FakeGraph, wa_id: str, words: str = "chào") -> None:
    before = len(fake.sent)
    assert await post(client, envelope(text(wa_id, words))) == 200
    await settle(client)
    await fake.wait_sent(before + 1)


async def test_inside_the_window_anything_goes_outside_only_a_template(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake, db=db_target)
    await wrote(client, fake, LAN)
    async with admin(client) as s:
        status, answer = await send(s, key, {"to": LAN, "text": "Đơn A123 đã được gửi đi"})
        assert status == 202 and answer["status"] == "queued"
        status, image = await send(s, key, {"to": LAN, "image": {"link": "https://shop.example/a.jpg",
                                                                 "caption": "Ảnh đơn hàng"}})
        assert status == 202
        status, refused = await send(s, key, {"to": MAI, "text": "Khuyến mãi!"})
        assert status == 409 and refused["error"]["code"] == "window_closed"
        assert "24 hours" in refused["error"]["message"] and "nothing was sent" in refused["error"]["message"]
        status, template = await send(s, key, {"to": MAI, "template": SHIPPED})
        assert status == 202
        status, fell_back = await send(s, key, {"to": MAI, "text": "Đơn A123 đã gửi", "fallback_template": SHIPPED})
        assert status == 202
        await settle(client)
        sent = await fake.wait_sent(5)
        assert fake.texts(LAN)[-2:] == ["Đơn A123 đã được gửi đi", "[image]"]
        to_mai = [b for b in sent if b["to"] == "+" + MAI]
        assert [b["type"] for b in to_mai] == ["template", "template"]
        assert to_mai[0]["template"] == {"name": "order_shipped", "language": {"code": "vi"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "A123"}, {"type": "text", "text": "GHN"}]}]}
        assert not fake.violations
        for answer_ in (answer, image, template, fell_back):
            assert (await status_of(s, key, answer_["id"]))["status"] == "sent"


async def test_bad_bodies_get_a_sentence_and_nothing_is_sent(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake, db=db_target)
    await wrote(client, fake, LAN)
    count = len(fake.sent)
    async with admin(client) as s:
        for body, words in [
            ({"text": "hi"}, '"to" must be'),
            ({"to": "12ab", "text": "hi"}, '"to" must be'),
            ({"to": LAN}, "exactly one message"),
            ({"to": LAN, "text": "a", "template": SHIPPED}, "not text and template"),
            ({"to": LAN, "text": "x" * 5000}, "WhatsApp limit"),
            ({"to": LAN, "template": {"language": "vi"}}, "approved in WhatsApp Manager"),
            ({"to": LAN, "buttons": {"body": "?", "buttons": "yes"}}, '"buttons" must be like'),
            ([1, 2], "JSON object"),
        ]:
            status, answer = await send(s, key, body)
            assert status == 400 and answer["error"]["code"] == "bad_request", body
            assert words in answer["error"]["message"], answer
    await asyncio.sleep(0.05)
    assert len(fake.sent) == count


async def test_opted_out_customers_are_refused_with_the_reason(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake, db=db_target)
    await wrote(client, fake, LAN)
    assert await post(client, envelope(text(LAN, "STOP"))) == 200
    await settle(client)
    async with admin(client) as s:
        status, answer = await send(s, key, {"to": LAN, "template": SHIPPED})
        assert status == 409 and answer["error"]["code"] == "opted_out"
        assert "START" in answer["error"]["message"]
        await wrote(client, fake, LAN, "START")
        status, _ = await send(s, key, {"to": LAN, "template": SHIPPED})
        assert status == 202


async def test_an_idempotency_key_makes_a_retried_post_send_once(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake, db=db_target)
    body = {"to": MAI, "template": SHIPPED}
    async with admin(client) as s:
        answers = await asyncio.gather(*(send(s, key, body, **{"Idempotency-Key": "order-A123"}) for _ in range(5)))
        assert {a[1]["id"] for a in answers} == {answers[0][1]["id"]} and {a[0] for a in answers} == {202}
        status, other = await send(s, key, {**body, "to": LAN}, **{"Idempotency-Key": "order-A123"})
        assert status == 422 and other["error"]["code"] == "idempotency_key_reused"
        status, second = await send(s, key, body, **{"Idempotency-Key": "order-A124"})
        assert status == 202 and second["id"] != answers[0][1]["id"]
        await settle(client)
        await asyncio.sleep(0.05)
    assert len([b for b in fake.sent if b["to"] == "+" + MAI]) == 2


async def test_the_status_follows_meta_up_to_read_and_a_failure_carries_metas_reason(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake, db=db_target)
    async with admin(client) as s:
        _, first = await send(s, key, {"to": MAI, "template": SHIPPED})
        _, second = await send(s, key, {"to": LAN, "template": SHIPPED})
        await settle(client)
        one, two = (await status_of(s, key, first["id"])), (await status_of(s, key, second["id"]))
        assert one["status"] == two["status"] == "sent" and one["wamid"].startswith("wamid.fake.")

        def status(wamid: str, value: str, recipient: str, **extra: Any) -> dict[str, Any]:
            return {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "123456"},
                    "statuses": [{"id": wamid, "status": value, "timestamp": "1764000001", "recipient_id": recipient,
                                  **extra}]}

        failed = {"errors": [{"code": 131026, "title": "Message undeliverable",
                              "error_data": {"details": "The number is not on WhatsApp."}}]}
        assert await post(client, envelope(status(one["wamid"], "delivered", MAI))) == 200
        assert await post(client, envelope(status(one["wamid"], "read", MAI))) == 200
        assert await post(client, envelope(status(two["wamid"], "failed", LAN, **failed))) == 200
        assert (await status_of(s, key, first["id"]))["status"] == "read"
        gone = await status_of(s, key, second["id"])
        assert gone["status"] == "failed" and gone["error"]["code"] == 131026
        assert "not on WhatsApp" in gone["error"]["message"]
