"""POST /api/v1/flows/{flow}/start: the flow runs as if the customer wrote, in order, within the window rules."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from tests.api import bearer, started
from tests.api.test_messages import LAN, MAI, SHIPPED, wrote
from tests.apptools import admin, envelope, post, settle, text
from tests.fakegraph import FakeGraph

VARS = {"code": "A123", "carrier": "GHN"}


async def start(s: aiohttp.ClientSession, key: str, flow: str, body: Any, **headers: str) -> tuple[int, Any]:
    resp = await s.post(f"/api/v1/flows/{flow}/start", json=body, headers={**bearer(key), **headers})
    return resp.status, await resp.json()


async def test_a_started_flow_runs_as_if_the_customer_had_written(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake, db=db_target)
    await wrote(client, fake, LAN)  # main greets her and asks for an order code
    async with admin(client) as s:
        status, answer = await start(s, key, "order_shipped", {"to": LAN, "vars": VARS})
        assert status == 202 and answer == {"to": LAN, "flow": "order_shipped", "status": "started",
                                             "opened_with_template": False}
        await settle(client)
        await fake.wait_sent(4)
        assert fake.texts(LAN)[-2:] == ["Đơn A123 đã giao cho GHN.", "Bạn nhận hàng ở nhà chứ?"]
        assert await post(client, envelope(text(LAN, "Có"))) == 200  # answers the flow's menu, not main's question
        await settle(client)
        await fake.wait_sent(5)
        assert fake.texts(LAN)[-1] == "Giờ nào tiện nhận hàng?"


async def test_a_start_without_the_flows_inputs_is_refused_and_nothing_runs(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake)
    await wrote(client, fake, LAN)
    before = len(fake.sent)
    async with admin(client) as s:
        status, answer = await start(s, key, "order_shipped", {"to": LAN, "vars": {"code": "A123"}})
    assert status == 400 and answer["error"]["message"] == (
        "The flow 'order_shipped' needs carrier in \"vars\" (its inputs: code, carrier); nothing was started.")
    await settle(client)
    await asyncio.sleep(0.2)
    assert len(fake.sent) == before


async def test_the_start_waits_its_turn_behind_the_customers_messages(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake, db=db_target)
    await wrote(client, fake, LAN)
    async with admin(client) as s:
        assert await post(client, envelope(text(LAN, "A100"))) == 200  # answers main's question
        status, _ = await start(s, key, "order_shipped", {"to": LAN, "vars": VARS})
        assert status == 202
        await settle(client)
        await fake.wait_sent(5)
    assert fake.texts(LAN)[1:] == ["Mã đơn của bạn?", "Cảm ơn, đơn A100.", "Đơn A123 đã giao cho GHN.",
                                   "Bạn nhận hàng ở nhà chứ?"]


async def test_outside_the_window_a_template_opens_the_flow_or_nothing_is_sent(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake, db=db_target)
    async with admin(client) as s:
        status, refused = await start(s, key, "order_shipped", {"to": MAI, "vars": VARS})
        assert status == 409 and refused["error"]["code"] == "window_closed"
        assert '"template"' in refused["error"]["message"]
        await asyncio.sleep(0.05)
        assert fake.sent == []
        status, answer = await start(s, key, "order_shipped", {"to": MAI, "vars": VARS, "template": SHIPPED})
        assert status == 202 and answer["opened_with_template"] is True
        await settle(client)
        sent = await fake.wait_sent(1)
        assert [b["type"] for b in sent] == ["template"]  # instead of the flow's free-form first messages
        assert await post(client, envelope(text(MAI, "Có"))) == 200  # her answer opens the window
        await settle(client)
        await fake.wait_sent(2)
        assert fake.texts(MAI)[-1] == "Giờ nào tiện nhận hàng?"


async def test_unknown_flows_opted_out_and_handed_off_customers_are_refused(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake, db=db_target)
    async with admin(client) as s:
        status, answer = await start(s, key, "nope", {"to": LAN})
        assert status == 404 and "order_shipped" in answer["error"]["message"]
        status, answer = await start(s, key, "order_shipped", {"to": LAN, "vars": [1]})
        assert status == 400 and answer["error"]["code"] == "bad_request"
        await wrote(client, fake, LAN)
        assert (await start(s, key, "human", {"to": LAN}))[0] == 202
        await settle(client)
        status, answer = await start(s, key, "order_shipped", {"to": LAN, "vars": VARS})
        assert status == 409 and answer["error"]["code"] == "in_handoff"
        await wrote(client, fake, MAI)
        assert await post(client, envelope(text(MAI, "STOP"))) == 200
        await settle(client)
        status, answer = await start(s, key, "order_shipped", {"to": MAI, "vars": VARS})
        assert status == 409 and answer["error"]["code"] == "opted_out"


async def test_an_idempotency_key_starts_the_flow_once(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake, db=db_target)
    await wrote(client, fake, LAN)
    async with admin(client) as s:
        for _ in range(3):
            status, _ = await start(s, key, "order_shipped", {"to": LAN, "vars": VARS}, **{"Idempotency-Key": "A123"})
            assert status == 202
        await settle(client)
        await asyncio.sleep(0.05)
    assert fake.texts(LAN).count("Đơn A123 đã giao cho GHN.") == 1


async def test_outside_the_window_the_flows_own_opens_with_template_opens_it(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    client, key = await started(aiohttp_client, tmp_path, fake)
    async with admin(client) as s:
        status, answer = await start(s, key, "order_delayed", {"to": MAI, "vars": VARS})
        assert status == 202 and answer["opened_with_template"] is True
        await settle(client)
        [sent] = await fake.wait_sent(1)
        assert sent["type"] == "template" and sent["template"]["name"] == "order_delayed"
        assert sent["template"]["components"] == [{"type": "body", "parameters": [{"type": "text", "text": "A123"}]}]
