"""Campaigns in the server: paced with the replies, replies first, opted-out and invalid skipped, pause/cancel."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.api import started
from tests.api.test_messages import LAN, wrote
from tests.apptools import Client, envelope, post, text
from tests.fakegraph import FakeGraph
from wabot.db.areas import CampaignData
from wabot.server.keys import STORE


def kept(client: Client) -> CampaignData:
    return client.app[STORE].campaigns


def numbers(count: int, start: int = 84_900_000_000) -> list[str]:
    return [str(start + i) for i in range(count)]


async def campaign(client: Client, recipients: list[str], *, digits: int = 4, **kw: Any) -> int:
    """A running campaign; each recipient's first parameter is the last `digits` digits of the number."""
    cid, _ = await kept(client).add(
        name="tết", template="promo", language="vi", recipients=[(n, [n[-digits:], "20%"]) for n in recipients],
        invalid=kw.get("invalid", []), now=time.time())
    return cid


async def until_done(client: Client, cid: int, within: float, every: float = 0.05) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            report = await kept(client).report(cid)
            assert report is not None
            if report["status"] in ("done", "cancelled") and report["waiting"] == 0:
                return report
            await asyncio.sleep(every)  # a report of 10,000 rows takes tens of ms


def answered(fake: FakeGraph, customer: str, *, since: int) -> bool:
    """Meta accepted a message to `customer` among the requests from number `since` on."""
    return any(isinstance(r.body, dict) and r.body.get("to") == "+" + customer and r.wamid
               for r in fake.requests[since:])


@pytest.mark.slow  # about 20 s on a quiet 2-core machine, 80 s on a loaded one
async def test_a_campaign_of_10000_keeps_the_outbox_pace_and_writing_customers_are_answered_within_a_second(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    # issue 13's scale: 10,000 rows; at 1,000/s (Meta's top tier) so that a CI run takes seconds, not minutes
    rate, count = 1000, 10_000
    client, _ = await started(aiohttp_client, tmp_path, fake, f"outbox: {{rate_per_second: {rate}}}\n")
    began = time.perf_counter()
    cid = await campaign(client, numbers(count), digits=1)  # ten distinct bodies: the fake checks each shape once
    waits = []
    for i in range(12):  # customers writing while the campaign runs
        await asyncio.sleep(0.3)
        customer = str(84_800_000_000 + i)
        seen = len(fake.requests)
        asked = time.perf_counter()
        assert await post(client, envelope(text(customer, "chào"))) == 200
        async with asyncio.timeout(5):
            while not answered(fake, customer, since=seen):  # noqa: ASYNC110 - fake.changed fires at each send
                await asyncio.sleep(0.005)
        waits.append(time.perf_counter() - asked)
    report = await until_done(client, cid, within=300, every=0.5)
    took = time.perf_counter() - began
    assert report["sent"] == count and report["failed"] == 0
    # within 1 s (issue 13); the median, because a machine at load 20 once held one reply 1.7 s: behind the
    # campaign instead of before it, every writer would wait seconds (10,000 rows at 1,000/s)
    assert sorted(waits)[len(waits) // 2] < 1.0, waits
    sends = count + 2 * len(waits)  # each writer got a greeting and a question, at the same pace
    assert took >= sends / rate * 0.95, took  # never faster than the number's rate (how close: bench --campaign)
    promo = [b for b in fake.sent if b["type"] == "template"]
    assert len(promo) == count and len({b["to"] for b in promo}) == count  # each customer once
    firsts = Counter(b["template"]["components"][0]["parameters"][0]["text"] for b in promo)
    assert firsts == {str(d): count // 10 for d in range(10)}  # each row's own parameters
    assert not fake.violations


async def test_opted_out_invalid_and_duplicate_numbers_are_skipped_and_counted(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, _ = await started(aiohttp_client, tmp_path, fake, db=db_target)
    await wrote(client, fake, LAN)
    assert await post(client, envelope(text(LAN, "STOP"))) == 200
    await asyncio.sleep(0.2)
    before = len(fake.sent)
    cid = await campaign(client, [*numbers(3), LAN, numbers(1)[0]], invalid=[(7, "invalid number")])
    report = await until_done(client, cid, within=10)
    assert report["sent"] == 3 and report["recipients"] == 6
    assert report["skipped"] == {"opted out": 1, "duplicate": 1, "invalid number": 1}
    assert all(b["to"] != "+" + LAN for b in fake.sent[before:])


async def test_pause_resume_and_cancel(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client, _ = await started(aiohttp_client, tmp_path, fake, "outbox: {rate_per_second: 50}\n", db=db_target)
    store = kept(client)
    cid = await campaign(client, numbers(200))
    await fake.wait_sent(10)
    assert await store.set_status(cid, "paused", now=time.time()) == "running"
    await asyncio.sleep(0.5)  # what was already in the outbox (0.2 s worth) goes out
    paused = len(fake.sent)
    await asyncio.sleep(0.5)
    assert len(fake.sent) == paused < 200
    assert await store.set_status(cid, "running", now=time.time()) == "paused"
    await fake.wait_sent(paused + 10)
    assert await store.set_status(cid, "cancelled", now=time.time()) == "running"
    report = await until_done(client, cid, within=5)
    assert report["status"] == "cancelled" and report["skipped"]["cancelled"] > 100
    assert report["sent"] + report["skipped"]["cancelled"] == 200
    assert await store.set_status(cid, "running", now=time.time()) == "cancelled"  # stays cancelled
    assert (await store.report(cid) or {})["status"] == "cancelled"
