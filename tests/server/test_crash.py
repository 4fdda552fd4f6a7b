"""The real process: kill -9 under traffic, then a restart, loses nothing; SIGTERM finishes the work in hand."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.apptools import envelope, text
from tests.fakegraph import RATE_LIMIT, Answer, FakeGraph
from tests.server.process import ECHO, Server, flow_folder, once, post_raw, send

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


async def test_kill_9_under_traffic_then_restart_answers_every_accepted_message(
    tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    server = Server(tmp_path, fake.url, db=db_target)
    await server.start()
    customers = [f"849{n:08d}" for n in range(300)]
    accepted: list[str] = []
    async with aiohttp.ClientSession() as session:

        async def one(n: int, customer: str) -> None:
            await asyncio.sleep(n * 0.002)  # about 500 messages a second
            if await send(session, server.url, customer, n):
                accepted.append(customer)

        async def killer() -> None:
            while len(accepted) < 100:  # noqa: ASYNC110 - polling the list the senders fill
                await asyncio.sleep(0.001)
            assert server.proc is not None
            server.proc.send_signal(signal.SIGKILL)

        await asyncio.gather(killer(), *(one(n, c) for n, c in enumerate(customers)))
    assert server.proc is not None
    assert await server.proc.wait() == -signal.SIGKILL
    assert 100 <= len(accepted) < len(customers), "the kill should land in the middle of the traffic"

    await server.start()  # same database
    try:
        async with asyncio.timeout(120):  # seconds alone; the bound is for loaded machines
            while not all(len(set(fake.texts(c))) >= 2 for c in accepted):  # noqa: ASYNC110 - polling FakeGraph
                await asyncio.sleep(0.05)
    finally:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        await server.proc.wait()
    duplicated = 0
    for customer in accepted:
        texts = fake.texts(customer)
        # the documented window: a reply Meta accepted just before the kill may go out once more, in order
        assert once(texts) == ["Xin chào Lan! 👋 Chào mừng đến với Trà Sen.", "Bạn cần gì hôm nay?"], (customer, texts)
        assert len(texts) - len(once(texts)) <= 1, (customer, texts)
        duplicated += len(texts) - len(once(texts))
    assert duplicated <= 64  # at most the sends in flight at the kill (outbox.concurrency)


async def test_sigterm_flushes_the_outbox_and_closes_cleanly(tmp_path: Path, fake: FakeGraph, db_target: str) -> None:
    server = Server(tmp_path, fake.url, db=db_target)
    await server.start()
    fake.script(delay=0.3, times=40)  # a slow Graph API: replies are still queued when SIGTERM comes
    async with aiohttp.ClientSession() as session:
        results = await asyncio.gather(*(send(session, server.url, f"849{n:08d}", n) for n in range(20)))
    assert all(results)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    assert await server.proc.wait() == 0
    assert len(fake.sent) == 40
    log = server.output()
    assert "Traceback" not in log
    assert wal_size(tmp_path / "wabot.db-wal") == 0  # the database was closed cleanly


def wal_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0




async def test_chaos_faults_duplicates_reordering_expired_token_and_kill_9_lose_and_reorder_nothing(
    tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    """Issue 4's acceptance test: every accepted message answered once, in order, whatever happens around it.

    The faults are scripted at chosen points of the Graph traffic (not drawn against the machine's timing), so
    every run sees all of them before the kill; the kill itself lands at a random point of the webhook traffic.
    """
    moment = random.randrange(80, 160)  # of the 240 messages: when the kill comes
    flows = flow_folder(tmp_path, ECHO)  # one reply per message: "nhận <its text>"
    token = tmp_path / "token"
    token.write_text("test-token", encoding="utf-8")
    # the Nth call to /messages (replies and mark-as-read alike): a 429, an HTML 500, a slow answer, a second 429;
    # from the 30th on the token has expired and sending pauses until the restart with the new one
    fake.faults = {3: Answer(429, RATE_LIMIT), 6: Answer(500, text="<html>oops</html>"), 9: Answer(delay=0.3),
                   14: Answer(429, RATE_LIMIT)}
    fake.expire_at = 30
    server = Server(tmp_path, fake.url, flows=flows, token=f"token_file: '{token}'", db=db_target)
    await server.start()
    customers = [f"8490{n:07d}" for n in range(40)]
    accepted: dict[str, list[str]] = {c: [] for c in customers}  # texts the server took, in the order it took them
    in_flight: dict[str, str] = {}

    async def customer(session: aiohttp.ClientSession, wa_id: str) -> None:
        rng = random.Random(wa_id)  # each customer's plan is the same in every run
        plan = [f"m{i}" for i in range(6)]
        if rng.random() < 0.5:
            plan[2], plan[3] = plan[3], plan[2]  # out of order: m3 comes before m2
        for body in plan:
            await asyncio.sleep(rng.uniform(0, 0.05))
            payload = json.dumps(envelope(text(wa_id, body, mid=f"wamid.{wa_id}.{body}"))).encode()
            for _ in range(2 if rng.random() < 0.3 else 1):  # Meta delivers some twice
                if await post_raw(session, server.url, payload):
                    if body not in accepted[wa_id]:
                        accepted[wa_id].append(body)
                elif wa_id not in in_flight:
                    in_flight[wa_id] = body  # sent when the kill came: it may or may not have been stored
            if sum(map(len, accepted.values())) >= 40:
                # 40 accepted messages make at least 40 calls to /messages: wait for the scripted expiry to come
                await asyncio.wait_for(fake.expired.wait(), 20)

    async def killer() -> None:
        while sum(map(len, accepted.values())) < moment:  # noqa: ASYNC110 - polling the senders' progress
            await asyncio.sleep(0.001)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(killer(), *(customer(session, c) for c in customers))
    assert server.proc is not None
    assert await server.proc.wait() == -signal.SIGKILL
    token.write_text(fake.new_token, encoding="utf-8")  # the operator puts the new token in place
    await server.start()
    try:
        async with asyncio.timeout(120):  # the replies come within seconds; the bound is for loaded machines
            while not all(set(fake.texts(c)) >= {f"nhận {t}" for t in accepted[c]} for c in customers):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    finally:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        await server.proc.wait()
    assert 80 <= sum(map(len, accepted.values())) < 240, "the kill should come in the middle of the traffic"
    assert any(r.status == 401 for r in fake.requests), "the token should have expired before the kill"
    assert not fake.faults, f"calls {sorted(fake.faults)} to /messages never came"
    assert {429, 500} <= {r.status for r in fake.requests}, "every scripted fault should have been answered"
    duplicates = 0
    for c in customers:
        got = fake.texts(c)
        shown = once(got)  # a resend right after itself
        expected = [f"nhận {t}" for t in accepted[c]]
        maybe = [*expected, f"nhận {in_flight[c]}"] if c in in_flight else expected  # stored, its 200 lost
        assert shown in (expected, maybe), (c, got, accepted[c], in_flight.get(c), f"kill after {moment}")
        duplicates += len(got) - len(shown)
    assert duplicates <= len(customers)  # at most the reply in flight per customer at the kill
    assert not server.tracebacks(), server.tracebacks()
