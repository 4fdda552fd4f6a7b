"""Two `python -m wabot` processes on one PostgreSQL: every message answered once, in order; a kill -9 costs a lease."""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.apptools import envelope, text
from tests.fakegraph import FakeGraph
from tests.server.process import ECHO, Server, flow_folder, free_port, once, post_raw

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

LEASE = 2.0  # database.lease_seconds of both instances
DESK = "desk-token-0123456789"  # the handoff desk's token (admin.token)
SLACK = 4.0  # a renewal (a third of the lease), the takeover's own work, a busy 2-core test machine


def two(tmp_path: Path, fake: FakeGraph, flows: Path, pg_url: str, **options: str) -> list[Server]:
    """Two instances (a and b) of one bot on one PostgreSQL, not started yet."""
    servers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        servers.append(Server(tmp_path / name, fake.url, flows=flows, db=pg_url, lease=LEASE, **options))
    return servers


async def test_two_instances_answer_every_customer_once_in_order_and_a_kill_9_costs_one_lease(
    tmp_path: Path, fake: FakeGraph, pg_url: str
) -> None:
    rng = random.Random(14)
    flows = flow_folder(tmp_path, ECHO)  # one reply per message: "nhận <its text>"
    servers = two(tmp_path, fake, flows, pg_url, level="INFO")
    await asyncio.gather(*(s.start() for s in servers))
    victim, survivor = servers
    customers = [f"8491{n:07d}" for n in range(30)]
    accepted: dict[str, list[str]] = {c: [] for c in customers}
    killed_at = 0.0

    async def customer(session: aiohttp.ClientSession, wa_id: str) -> None:
        for i in range(8):
            await asyncio.sleep(rng.uniform(0, 0.03))
            body = f"m{i}"
            payload = json.dumps(envelope(text(wa_id, body, mid=f"wamid.{wa_id}.{body}"))).encode()
            first = rng.choice(servers)  # the load balancer picks either instance
            for server in (first, survivor, survivor, survivor):  # a refused post goes to the live one
                if await post_raw(session, server.url, payload):
                    accepted[wa_id].append(body)
                    break
                await asyncio.sleep(0.05)

    async def killer() -> None:
        nonlocal killed_at
        while sum(map(len, accepted.values())) < 100:  # noqa: ASYNC110 - polling the senders' progress
            await asyncio.sleep(0.001)
        assert victim.proc is not None
        victim.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(killer(), *(customer(session, c) for c in customers))
    assert victim.proc is not None
    assert await victim.proc.wait() == -signal.SIGKILL
    try:
        async with asyncio.timeout(LEASE + SLACK + 60):  # answering them takes CPU a loaded machine may not have
            taken_after = await taken_over(pg_url, victim, since=killed_at)
            while not all(set(fake.texts(c)) >= {f"nhận {t}" for t in accepted[c]} for c in customers):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        answered_after = time.monotonic() - killed_at
    finally:
        assert survivor.proc is not None
        survivor.proc.send_signal(signal.SIGTERM)
        await survivor.proc.wait()
    total = sum(map(len, accepted.values()))
    assert total == 8 * len(customers), "with a live instance left, every message is taken"
    duplicates = 0
    for c in customers:
        got = fake.texts(c)
        assert once(got) == [f"nhận m{i}" for i in range(8)], (c, got)  # a resend right after itself
        duplicates += len(got) - len(once(got))
    assert duplicates <= len(customers)  # at most the reply in flight per customer at the kill
    print(f"taken over {taken_after:.2f} s, all answered {answered_after:.2f} s after the kill (lease {LEASE} s), "
          f"{duplicates} resent")
    assert taken_after <= LEASE + SLACK, f"the dead instance's customers waited {taken_after:.1f} s for a new holder"
    assert not survivor.tracebacks() + victim.tracebacks(), survivor.tracebacks() + victim.tracebacks()


async def test_an_instance_stalled_past_its_lease_leaves_the_replies_to_the_one_that_took_over(
    tmp_path: Path, fake: FakeGraph, pg_url: str
) -> None:
    """SIGSTOP the holder with replies queued, longer than its lease: on SIGCONT it must not send them again."""
    flows = flow_folder(tmp_path, ECHO)
    servers = two(tmp_path, fake, flows, pg_url, outbox="rate_per_second: 10, shutdown_grace_seconds: 5")  # a queue
    await asyncio.gather(*(s.start() for s in servers))
    stalled, other = servers
    wa_id = "84920000001"
    sent: list[str] = []

    async def post(session: aiohttp.ClientSession, server: Server, body: str) -> None:
        payload = json.dumps(envelope(text(wa_id, body, mid=f"wamid.{wa_id}.{body}"))).encode()
        assert await post_raw(session, server.url, payload)
        sent.append(body)

    assert stalled.proc is not None
    try:
        async with aiohttp.ClientSession() as session:
            for i in range(6):
                await post(session, stalled, f"m{i}")
            async with asyncio.timeout(20):
                while not fake.texts(wa_id):  # noqa: ASYNC110 - the first reply is out, the rest are queued
                    await asyncio.sleep(0.01)
            stalled.proc.send_signal(signal.SIGSTOP)
            await asyncio.sleep(LEASE * 2 + 1)  # the lease runs out; the other instance takes the customer over
            await post(session, other, "m6")
            await asyncio.sleep(LEASE)
            # frozen, it may hold a row lock mid-commit (a "sent" mark) that the other waits for: wake it up
            stalled.proc.send_signal(signal.SIGCONT)
            async with asyncio.timeout(LEASE + SLACK + 20):
                while set(fake.texts(wa_id)) < {f"nhận {t}" for t in sent}:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            await asyncio.sleep(LEASE * 2)  # time for the stalled one to send what it still held, were it to
    finally:
        stalled.proc.send_signal(signal.SIGCONT)
        for server in servers:
            assert server.proc is not None
            server.proc.send_signal(signal.SIGTERM)
            await server.proc.wait()
    got = fake.texts(wa_id)
    assert once(got) == [f"nhận m{i}" for i in range(7)], got
    assert len(got) - len(once(got)) <= 1, f"only the reply in flight at the stall may repeat: {got}"
    found = stalled.tracebacks() + other.tracebacks()
    assert not found, found


@pytest.mark.parametrize("via", ["desk", "api"])
async def test_an_agent_reply_taken_by_the_instance_not_holding_the_customer_goes_once_after_the_queued_ones(
    tmp_path: Path, fake: FakeGraph, pg_url: str, via: str
) -> None:
    """The desk (or the business API) answers through instance b while a holds the customer with replies still
    queued (slow pace): b hands the message to a, which sends it after them."""
    flows = flow_folder(tmp_path, ECHO)
    servers = two(tmp_path, fake, flows, pg_url, outbox="rate_per_second: 4, shutdown_grace_seconds: 5")  # 2/s each
    holder, other = servers
    desk = free_port()  # b's admin listener, with the desk on
    config = other.config.read_text(encoding="utf-8")
    other.config.write_text(config.replace("admin: {port: 0}", f"admin: {{port: {desk}, token: {DESK}}}"),
                            encoding="utf-8")
    await asyncio.gather(*(s.start() for s in servers))
    wa_id = "84920000002"
    try:
        async with aiohttp.ClientSession() as session:
            for i in range(4):
                payload = json.dumps(envelope(text(wa_id, f"m{i}", mid=f"wamid.{wa_id}.m{i}"))).encode()
                assert await post_raw(session, holder.url, payload)
            async with asyncio.timeout(30):
                while await queued(pg_url, wa_id) < 4 or not fake.texts(wa_id):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)  # the four turns are done, the first reply out, the rest wait in a
            if via == "desk":
                url, key = f"http://127.0.0.1:{desk}/admin/conversations/{wa_id}/reply", DESK
                ask: dict[str, str] = {"text": "agent"}
            else:
                url, key = f"http://127.0.0.1:{desk}/api/v1/messages", await api_key(other)
                ask = {"to": wa_id, "text": "agent"}
            async with session.post(url, json=ask, headers={"Authorization": f"Bearer {key}"}) as resp:
                assert resp.status == 202, await resp.text()
            async with asyncio.timeout(LEASE + SLACK + 20):
                while "agent" not in fake.texts(wa_id):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            await asyncio.sleep(1.0)  # time for a second copy to arrive, were one sent
    finally:
        for server in servers:
            assert server.proc is not None
            server.proc.send_signal(signal.SIGTERM)
            await server.proc.wait()
    assert fake.texts(wa_id) == ["nhận m0", "nhận m1", "nhận m2", "nhận m3", "agent"]  # in order, each once
    found = holder.tracebacks() + other.tracebacks()
    assert not found, found


async def api_key(server: Server) -> str:
    """A business API key made with `wabot apikey create` on the server's settings (printed alone on the last line)."""
    made = await asyncio.create_subprocess_exec(sys.executable, "-m", "wabot", "--config", str(server.config),
                                                "apikey", "create", "shop", stdout=asyncio.subprocess.PIPE)
    out, _ = await made.communicate()
    assert made.returncode == 0, out
    return out.decode().strip().splitlines()[-1]


async def taken_over(url: str, victim: Server, *, since: float) -> float:
    """Seconds from `since` until no customer with work waiting is still held by the killed instance.

    This is the lease's promise (the bench measures how fast the customers are then answered, which is CPU): a
    renewal timer and one query on the survivor, light enough to hold on a loaded machine.
    """
    joined = re.search(r"instance (\S+) joined", victim.output())
    assert joined, victim.output()
    conn = await asyncpg.connect(url)
    try:
        while await conn.fetchval(  # noqa: ASYNC110 - polling the database
            "SELECT COUNT(*) FROM claims c WHERE c.owner = $1"
            " AND EXISTS (SELECT 1 FROM inbox i WHERE i.customer = c.customer AND i.done = 0)", joined[1],
        ):
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    return time.monotonic() - since


async def queued(url: str, customer: str) -> int:
    """How many replies the customer has in the outbox (queued or sent)."""
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT COUNT(*) FROM outbox WHERE customer = $1", customer))
    finally:
        await conn.close()
