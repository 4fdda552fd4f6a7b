"""The real `python -m wabot` in a child process, and what the tests that kill, stop and restart it share."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import aiohttp

from tests import DEMO
from tests.apptools import PHONE_ID, SECRET, envelope, text
from wabot.server.webhook import sign

ECHO = """\
flows:
  main:
    steps:
      - id: loop
        ask: "nhận {{ message.text }}"
        save: last
      - goto: loop
"""


def flow_folder(tmp_path: Path, flows: str, name: str = "echo.yaml") -> Path:
    """A folder `flows` under tmp_path holding one flow file with the text `flows`."""
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / name).write_text(flows, encoding="utf-8")
    return folder


def once(texts: list[str]) -> list[str]:
    """The texts without a repeat right after itself (the reply in flight at a kill may be sent again)."""
    return [t for i, t in enumerate(texts) if i == 0 or t != texts[i - 1]]


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
