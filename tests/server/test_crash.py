"""The real process: kill -9 under traffic, then a restart, loses nothing; SIGTERM finishes the work in hand."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from tests import DEMO
from tests.apptools import PHONE_ID, SECRET, envelope, text
from tests.fakegraph import RATE_LIMIT, Answer, FakeGraph
from wabot.server.webhook import sign

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`python -m wabot` in a child process, on a free port."""

    def __init__(self, tmp_path: Path, graph_url: str, *, flows: Path = DEMO, token: str = "token: test-token",
                 outbox: str = "rate_per_second: 1000, shutdown_grace_seconds: 5", extra: str = "",
                 db: str = "", lease: float = 2.0, level: str = "WARNING") -> None:
        """`db`: an SQLite file or a postgresql:// URL (empty: wabot.db in tmp_path); `lease`: PostgreSQL's."""
        self.port = free_port()
        self.config = tmp_path / "config.yaml"
        self.log = tmp_path / "server.log"
        # a generous Graph timeout: on a loaded machine a 1 s one expires on answers Meta (the fake) already accepted,
        # and the retry is a second copy the kill test would count against the one-duplicate bound
        self.config.write_text(
            f"whatsapp: {{{token}, phone_number_id: '{PHONE_ID}', app_secret: {SECRET},"
            f" verify_token: v, api_url: '{graph_url}', timeout: 5}}\n"
            f"server: {{host: 127.0.0.1, port: {self.port}}}\n"
            f"database: {{path: '{tmp_path / 'wabot.db'}', url: '{db}', lease_seconds: {lease}}}\n"
            "admin: {port: 0}\n"
            f"bot: {{flows: '{flows}'}}\n"
            f"outbox: {{{outbox}}}\n"
            f"logging: {{level: {level}}}\n" + extra,
            encoding="utf-8",
        )
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log.open("ab") as log:  # a file, not a pipe: a chatty server must never block on its log
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "wabot", "--config", str(self.config), stdout=log, stderr=log,
            )
        try:  # generous: on a loaded 2-core machine (load average 14 seen) start-up alone took over 15 s
            async with aiohttp.ClientSession() as session, asyncio.timeout(60):
                while True:
                    try:
                        async with session.get(f"{self.url}/healthz") as resp:
                            if resp.status == 200:
                                return
                    except aiohttp.ClientError:
                        pass
                    if self.proc.returncode is not None:
                        break
                    await asyncio.sleep(0.05)
        except TimeoutError:
            pass
        self.proc.kill()  # never leave a server behind the test
        await self.proc.wait()
        raise AssertionError(f"the server did not become healthy:\n{self.output()[-2000:]}")

    def output(self) -> str:
        return self.log.read_text("utf-8", "replace")

    def tracebacks(self) -> str:
        """Each traceback in the server's output with the lines around it (empty: none), for an assertion's message."""
        lines = self.output().splitlines()
        return "\n\n".join("\n".join(lines[max(i - 3, 0):i + 40]) for i, line in enumerate(lines)
                            if line.startswith("Traceback"))


async def send(session: aiohttp.ClientSession, url: str, customer: str, n: int) -> bool:
    """A signed "hi" from `customer`; True when the server answered 200."""
    return await post_raw(session, url, json.dumps(envelope(text(customer, "hi", mid=f"wamid.crash.{n}"))).encode())


async def post_raw(session: aiohttp.ClientSession, url: str, body: bytes) -> bool:
    """One signed webhook; True when the server answered 200 (Meta would not deliver it again)."""
    try:
        async with session.post(f"{url}/webhook/whatsapp", data=body,
                                headers={"X-Hub-Signature-256": sign(SECRET, body)}) as resp:
            await resp.read()
            return resp.status == 200
    except (aiohttp.ClientError, OSError):
        return False


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
        once = [t for i, t in enumerate(texts) if i == 0 or t != texts[i - 1]]
        assert once == ["Xin chào Lan! 👋 Chào mừng đến với Trà Sen.", "Bạn cần gì hôm nay?"], (customer, texts)
        assert len(texts) - len(once) <= 1, (customer, texts)
        duplicated += len(texts) - len(once)
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


ECHO = """\
flows:
  main:
    steps:
      - id: loop
        ask: "nhận {{ message.text }}"
        save: last
      - goto: loop
"""


async def test_chaos_faults_duplicates_reordering_expired_token_and_kill_9_lose_and_reorder_nothing(
    tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    """Issue 4's acceptance test: every accepted message answered once, in order, whatever happens around it.

    The faults are scripted at chosen points of the Graph traffic (not drawn against the machine's timing), so
    every run sees all of them before the kill; the kill itself lands at a random point of the webhook traffic.
    """
    moment = random.randrange(80, 160)  # of the 240 messages: when the kill comes
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "echo.yaml").write_text(ECHO, encoding="utf-8")  # one reply per message: "nhận <its text>"
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
        once = [t for i, t in enumerate(got) if i == 0 or t != got[i - 1]]  # a resend right after itself
        expected = [f"nhận {t}" for t in accepted[c]]
        maybe = [*expected, f"nhận {in_flight[c]}"] if c in in_flight else expected  # stored, its 200 lost
        assert once in (expected, maybe), (c, got, accepted[c], in_flight.get(c), f"kill after {moment}")
        duplicates += len(got) - len(once)
    assert duplicates <= len(customers)  # at most the reply in flight per customer at the kill
    assert not server.tracebacks(), server.tracebacks()
