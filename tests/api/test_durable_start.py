"""A flow started through the business API is kept in the database before the 202: kill -9 loses none of them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.api import SHOP, bearer
from tests.fakegraph import FakeGraph
from tests.server.process import Server, free_port, send
from wabot.api.keys import digest, new_key
from wabot.db.store import Store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


async def test_flows_started_right_before_a_kill_9_each_run_once_after_the_restart(
    tmp_path: Path, fake: FakeGraph
) -> None:
    server = Server(tmp_path, fake.url, flows=SHOP)
    admin_port = free_port()
    server.config.write_text(server.config.read_text("utf-8").replace(
        "admin: {port: 0}", f"admin: {{host: 127.0.0.1, port: {admin_port}}}"), "utf-8")
    store = await Store.open(tmp_path / "wabot.db")
    key = new_key()
    assert await store.api.add_key("shop", digest(key), now=time.time())
    await store.close()
    customers = [f"849{n:08d}" for n in range(60)]
    await server.start()
    async with aiohttp.ClientSession() as session:
        for n, customer in enumerate(customers):  # each writes first: the 24-hour window is open
            assert await send(session, server.url, customer, n)
        await fake.wait_sent(2 * len(customers), within=60)
        accepted: list[str] = []
        first = asyncio.Event()

        async def start(customer: str) -> None:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.post(f"http://127.0.0.1:{admin_port}/api/v1/flows/order_shipped/start",
                                        headers=bearer(key),
                                        json={"to": customer, "vars": {"code": f"C{customer[-4:]}",
                                                                       "carrier": "GHN"}}) as resp:
                    if resp.status == 202:
                        accepted.append(customer)
                        first.set()

        async def killer() -> None:
            await first.wait()  # right after a 202: the other starts are in flight or waiting for their turn
            assert server.proc is not None
            server.proc.send_signal(signal.SIGKILL)

        await asyncio.gather(killer(), *(start(c) for c in customers))
    assert server.proc is not None
    assert await server.proc.wait() == -signal.SIGKILL
    assert accepted

    def shipped(customer: str) -> list[str]:
        return [t for t in fake.texts(customer) if t.startswith("Đơn C")]

    await server.start()  # same database
    try:
        async with asyncio.timeout(120):  # seconds alone; the bound is for loaded machines
            while not all(shipped(c) for c in accepted):  # noqa: ASYNC110 - polling FakeGraph
                await asyncio.sleep(0.05)
    finally:
        server.proc.send_signal(signal.SIGTERM)
        await server.proc.wait()
    with contextlib.closing(sqlite3.connect(tmp_path / "wabot.db")) as db:
        queued = db.execute("SELECT customer, COUNT(*) FROM outbox WHERE body LIKE '%Đơn C%' GROUP BY customer")
        turns = dict(queued.fetchall())
        left = db.execute("SELECT COUNT(*) FROM inbox WHERE done = 0").fetchone()[0]
    for customer in accepted:  # the flow ran once: one turn queued its first words once
        assert turns.get(customer) == 1, (customer, turns.get(customer))
        assert shipped(customer)[0] == f"Đơn C{customer[-4:]} đã giao cho GHN.", fake.texts(customer)
    assert all(count == 1 for count in turns.values()), turns  # a start whose 202 was lost ran at most once too
    assert left == 0
