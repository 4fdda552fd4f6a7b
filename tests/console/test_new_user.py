"""The issue's "done when", as a new user would: `wabot user add lan`, start `python -m wabot` (a real process),
sign in to the console, a customer's "Gặp nhân viên" shows up in the inbox, the answer reaches the customer.
And with PostgreSQL: `wabot user add` writes the account there and the console signs in with it."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests import ROOT
from tests.apptools import SECRET, config, envelope, text
from tests.console.kit import PASSWORD, browser, console_app, sign_in
from tests.fakegraph import FakeGraph
from wabot.server.webhook import sign

LAN = "84912345678"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_user_add_then_the_console_of_a_running_wabot_shows_and_answers_a_handoff(
    tmp_path: Path, fake: FakeGraph
) -> None:
    public, admin = free_port(), free_port()
    path = config(tmp_path, fake.url, f"server: {{host: 127.0.0.1, port: {public}}}\n"
                                      f"admin: {{host: 127.0.0.1, port: {admin}}}\n")
    wabot = [sys.executable, "-m", "wabot", "--config", str(path)]
    env = {"PATH": "/usr/bin:/bin"}
    added = await asyncio.create_subprocess_exec(*wabot, "user", "add", "lan", cwd=ROOT, env=env,
                                                 stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                 stdout=asyncio.subprocess.DEVNULL)
    _, complaint = await added.communicate((PASSWORD + "\n").encode())
    assert added.returncode == 0, complaint.decode()
    server = await asyncio.create_subprocess_exec(*wabot, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                  stderr=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{admin}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with asyncio.timeout(30):
                while True:
                    try:
                        async with session.get(f"{base}/console/login") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.1)
            resp = await session.post(f"{base}/console/login", data={"name": "lan", "password": PASSWORD},
                                      headers={"Origin": base})
            page = await resp.text()
            csrf = page.split('<meta name="csrf" content="')[1].split('"')[0]
            for said in ("xin chào", "Gặp nhân viên"):
                body = json.dumps(envelope(text(LAN, said))).encode()
                async with session.post(f"http://127.0.0.1:{public}/webhook/whatsapp", data=body,
                                        headers={"X-Hub-Signature-256": sign(SECRET, body)}) as hook:
                    assert hook.status == 200
            async with asyncio.timeout(2):  # the issue: within 2 seconds
                while True:  # polling the page, as a person reloading it would
                    if 'data-testid="inbox-item"' in await (await session.get(f"{base}/console/inbox/items")).text():
                        break
                    await asyncio.sleep(0.05)
            await session.post(f"{base}/console/c/{LAN}/reply", data={"csrf": csrf, "text": "Dạ em nghe ạ"},
                               headers={"Origin": base})
            async with asyncio.timeout(5):
                while "Dạ em nghe ạ" not in fake.texts(LAN):
                    await fake.wait_sent(len(fake.sent) + 1)
    finally:
        server.terminate()
        _, err = await server.communicate()
    assert server.returncode == 0, err.decode()
    assert b"Traceback" not in err


async def test_with_postgresql_user_add_writes_the_account_there_and_the_console_signs_in(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, pg_url: str
) -> None:
    path = config(tmp_path, fake.url, db=pg_url)
    added = await asyncio.create_subprocess_exec(sys.executable, "-m", "wabot", "--config", str(path), "user", "add",
                                                 "lan", cwd=ROOT, env={"PATH": "/usr/bin:/bin"},
                                                 stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                 stdout=asyncio.subprocess.DEVNULL)
    _, complaint = await added.communicate((PASSWORD + "\n").encode())
    assert added.returncode == 0, complaint.decode()
    client = await console_app(aiohttp_client, tmp_path, fake, users=(), db=pg_url)
    async with browser(client) as session:
        await sign_in(client, session)  # the password `wabot user add` kept in PostgreSQL
        assert "inbox-empty" in await (await session.get("/console/")).text()
