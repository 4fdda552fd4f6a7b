"""Several instances: the send rate shared from an instance's first moment, and a release is no takeover."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.apptools import start
from tests.fakegraph import FakeGraph
from wabot.db.postgres import PgStore
from wabot.server.cluster import Cluster
from wabot.server.keys import SENDER

RATE = 100  # outbox.rate_per_second of the number both instances send for
LEASE = 120  # database.lease_seconds: a renewal every 40 s, so only the joiner's notice can share the rate sooner


async def test_an_instance_joining_shares_the_rate_with_the_others_at_once(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, pg_url: str
) -> None:
    extra = (f"outbox: {{rate_per_second: {RATE}}}\n"
             f"database: {{path: '{tmp_path / 'wabot.db'}', url: '{pg_url}', lease_seconds: {LEASE}}}\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = await start(aiohttp_client, tmp_path / "a", fake, extra, db=pg_url)
    assert a.app[SENDER].pacer.interval == 1 / RATE  # alone: the whole rate
    b = await start(aiohttp_client, tmp_path / "b", fake, extra, db=pg_url)
    assert b.app[SENDER].pacer.interval == 2 / RATE  # the joiner counted both before its first send
    async with asyncio.timeout(LEASE / 6):  # the first instance, told by a notice (two instances once sent 115/s
        while a.app[SENDER].pacer.interval != 2 / RATE:  # noqa: ASYNC110 - for a 100/s number until a renewal)
            await asyncio.sleep(0.02)
    await b.close()  # a clean stop says so: the one left takes the whole rate again
    async with asyncio.timeout(LEASE / 6):
        while a.app[SENDER].pacer.interval != 1 / RATE:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_a_claim_given_up_while_a_renewal_runs_is_not_taken_for_a_takeover(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = await PgStore.open(pg_url)
    try:
        cluster = Cluster(store, lease=30)
        await cluster.renew()
        assert await cluster.acquire("84901")
        cluster.claimed_at["84901"] -= 1  # claimed before the renewal below asks
        # the release's DELETE is made, its answer not yet read: a renewal in between finds the claim gone
        cluster.releasing["84901"] = asyncio.get_running_loop().create_future()
        assert await store.release("84901", owner=cluster.me)
        with caplog.at_level(logging.WARNING, logger="wabot.server.cluster"):
            await cluster.renew()
            assert "84901" in cluster.owned and not caplog.records  # the release, not another instance, took it
            cluster.releasing.clear()  # a claim gone with no release of ours under way is a takeover
            await cluster.renew()
        assert "84901" not in cluster.owned
        assert ["stalled longer than its lease" in r.getMessage() for r in caplog.records] == [True]
    finally:
        await store.close()
