"""Two app instances on one PostgreSQL: a campaign shared out with no recipient twice, each event to the shop
delivered once and in order per customer, and a handoff on one instance heard by the other's live inbox."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.api import bearer, started
from tests.api.test_messages import wrote
from tests.apptools import Client, admin, envelope, post, text
from tests.fakegraph import FakeGraph
from tests.server.test_shopevents import Shop, events, shop
from wabot.server.keys import HUB, SENDER, STORE

__all__ = ["shop"]

RATE = 100  # outbox.rate_per_second for the number: the two instances share it
KEYS: dict[Client, str] = {}


async def pair(aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, pg_url: str, extra: str) -> list[Client]:
    """Two instances (apps with the business API, each with a key named after it) on one PostgreSQL database."""
    apps = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        client, key = await started(aiohttp_client, tmp_path / name, fake, extra, name=name, db=pg_url)
        KEYS[client] = key
        apps.append(client)
    return apps


async def test_two_instances_share_a_campaign_and_no_recipient_gets_it_twice(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, pg_url: str
) -> None:
    a, b = await pair(aiohttp_client, tmp_path, fake, pg_url, f"outbox: {{rate_per_second: {RATE}}}\n")
    count = 300
    numbers = [str(84_900_000_000 + i) for i in range(count)]
    async with asyncio.timeout(30):  # each shares the rate once it knows of the other (the joiner's notice: at once)
        while not a.app[SENDER].pacer.interval == b.app[SENDER].pacer.interval == 2 / RATE:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    cid, _ = await a.app[STORE].campaigns.add(name="chia", template="promo", language="vi",
                                              recipients=[(n, [n[-4:]]) for n in numbers], invalid=[], now=time.time())
    began = time.perf_counter()
    async with asyncio.timeout(60):
        while True:
            report = await b.app[STORE].campaigns.report(cid)
            assert report is not None
            if report["status"] == "done" and report["waiting"] == 0:
                break
            await asyncio.sleep(0.1)
    took = time.perf_counter() - began
    promo = Counter(body["to"] for body in fake.sent if body["type"] == "template")
    assert report["sent"] == count and report["failed"] == report["unknown"] == 0
    assert sorted(promo) == sorted("+" + n for n in numbers) and set(promo.values()) == {1}  # each once
    assert took >= count / RATE * 0.9, took  # the number's rate held by the two together, not each
    assert a.app[SENDER].pacer.interval == b.app[SENDER].pacer.interval == 2 / RATE  # each sends its half


async def test_each_event_reaches_the_shop_once_and_in_order_whichever_instance_delivers_it(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, pg_url: str, shop: Shop
) -> None:
    a, b = await pair(aiohttp_client, tmp_path, fake, pg_url, events(shop))
    customers = [str(84_910_000_000 + i) for i in range(8)]
    for n, customer in enumerate(customers):  # each opts out and back in, through either instance
        for words in ("STOP", "START"):
            assert await post((a, b)[n % 2], envelope(text(customer, words))) == 200
    await shop.wait(2 * len(customers), within=30)
    await asyncio.sleep(1.5)  # one more pass of both deliverers: nothing is delivered a second time
    ids = [e["id"] for e in shop.taken]
    assert len(ids) == len(set(ids)) == 2 * len(customers), Counter(ids)
    for customer in customers:
        assert [e["type"] for e in shop.taken if e["customer"] == customer] == ["opted_out", "opted_in"]


async def test_a_handoff_on_one_instance_reaches_the_live_inbox_of_the_other(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, pg_url: str
) -> None:
    a, b = await pair(aiohttp_client, tmp_path, fake, pg_url, "")
    lan = "84912345678"
    await wrote(a, fake, lan)
    with b.app[HUB].subscribe() as heard:
        async with admin(a) as s:  # the shop hands her to a person, through instance a
            resp = await s.post("/api/v1/flows/human/start", headers=bearer(KEYS[a]), json={"to": lan})
            assert resp.status == 202
        async with asyncio.timeout(10):
            while (h := await heard.get()).kind != "handoff_opened":
                pass
    assert h.customer == lan
