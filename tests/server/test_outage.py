"""Long outages against a real `python -m wabot`: a Graph API that refuses every send loses nothing."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.apptools import envelope, text
from tests.fakegraph import FakeGraph
from tests.server.test_crash import ECHO, Server, post_raw

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


async def test_a_graph_outage_longer_than_the_attempts_loses_nothing_and_keeps_the_order(
    tmp_path: Path, fake: FakeGraph
) -> None:
    """Issue 16 item 3: 17 of 140 replies were "failed for good" after 1.5-3 minutes of Graph refusing them.

    Here three tries would be over within a second or two; the outage lasts longer, and every reply still goes
    out, in order per customer, once Graph is back. /readyz shows the replies waiting meanwhile.
    """
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "echo.yaml").write_text(ECHO, encoding="utf-8")
    server = Server(tmp_path, fake.url, flows=flows,
                    outbox="rate_per_second: 1000, shutdown_grace_seconds: 2, max_attempts: 3, max_backoff_seconds: 0.3")
    fake.script(503, disconnect=True, times=100_000)  # Graph drops every connection
    await server.start()
    customers = [f"8491{n:07d}" for n in range(3)]
    try:
        async with aiohttp.ClientSession() as session:
            for i in range(4):
                for c in customers:
                    body = json.dumps(envelope(text(c, f"m{i}", mid=f"wamid.{c}.{i}"))).encode()
                    assert await post_raw(session, server.url, body)
            async with asyncio.timeout(20):
                while len(fake.requests) < 40:  # well past three tries for every customer's first reply
                    await asyncio.sleep(0.1)
            async with session.get(f"{server.url}/readyz") as resp:
                ready = await resp.json()
            assert ready["outbox_depth"] == 12 and ready["outbox_retrying"] == 3  # one head per customer
            fake.answers.clear()  # Graph is back
            async with asyncio.timeout(20):
                while len(fake.sent) < 12:
                    await asyncio.sleep(0.1)
    finally:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        await server.proc.wait()
    for c in customers:
        assert fake.texts(c) == [f"nhận m{i}" for i in range(4)]
    assert "failed for good" not in server.output()
