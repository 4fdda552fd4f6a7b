"""Timers survive a crash: a real `python -m wabot` killed with SIGKILL while timers wait, started again after
they came due; each fires once, right after the restart (issue 13, item 3)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.apptools import envelope, text
from tests.fakegraph import FakeGraph
from tests.server.process import Server, flow_folder, once, post_raw

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

FLOWS = """
flows:
  main:
    steps:
      - ask: "Tên bạn là gì?"
        save: name
        remind: {after: 8s, say: "Bạn ơi, tên bạn là gì?"}
      - say: "Chào {{ name }}, lát nữa mình nhắn lại"
      - wait: 8s
      - end: "Đây rồi, {{ name }}!"
"""
SILENT, ANSWERED = "84911111111", "84922222222"


async def say(session: aiohttp.ClientSession, url: str, customer: str, body: str, n: int) -> None:
    payload = json.dumps(envelope(text(customer, body, mid=f"wamid.timer.{customer}.{n}"))).encode()
    assert await post_raw(session, url, payload)


async def test_timers_due_while_the_server_was_down_fire_once_after_a_restart(
    tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    flows = flow_folder(tmp_path, FLOWS)
    server = Server(tmp_path, fake.url, flows=flows, db=db_target, extra="logging: {level: INFO}\n")
    await server.start()
    async with aiohttp.ClientSession() as session:
        await say(session, server.url, SILENT, "hi", 1)
        await say(session, server.url, ANSWERED, "hi", 1)
        await fake.wait_sent(2, within=30)
        await say(session, server.url, ANSWERED, "Lan", 2)
        await fake.wait_sent(3, within=30)
    await asyncio.sleep(1.0)  # the last reply recorded as sent (one in flight at a kill may go out again)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)  # the reminder and the wait are set and due in about 8 seconds
    killed = time.monotonic()
    assert await server.proc.wait() == -signal.SIGKILL
    before = fake.texts(SILENT) + fake.texts(ANSWERED)
    assert "Bạn ơi, tên bạn là gì?" not in before and "Đây rồi, Lan!" not in before, "fired before the kill"
    await asyncio.sleep(max(0.0, 9.0 - (time.monotonic() - killed)))  # both come due while nothing runs
    await server.start()
    up = time.monotonic()
    try:
        async with asyncio.timeout(30):
            while "Bạn ơi, tên bạn là gì?" not in fake.texts(SILENT) or "Đây rồi, Lan!" not in fake.texts(ANSWERED):
                await fake.wait_sent(len(fake.sent) + 1, within=30)
        late = time.monotonic() - up
        await asyncio.sleep(1.5)  # nothing fires twice
    finally:
        server.proc.send_signal(signal.SIGTERM)
        await server.proc.wait()
    assert once(fake.texts(SILENT)) == ["Tên bạn là gì?", "Bạn ơi, tên bạn là gì?"]
    assert once(fake.texts(ANSWERED)) == ["Tên bạn là gì?", "Chào Lan, lát nữa mình nhắn lại", "Đây rồi, Lan!"]
    assert fake.texts(SILENT).count("Bạn ơi, tên bạn là gì?") == 1 and fake.texts(ANSWERED).count("Đây rồi, Lan!") == 1
    print(f"overdue timers fired {late:.2f} s after the restarted server answered /healthz")
    assert not server.tracebacks(), server.tracebacks()
