"""Helpers for the console's tests: an app with the console on its admin listener, accounts, signed-in sessions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp

from tests.apptools import Client, rows, start
from tests.fakegraph import FakeGraph
from wabot import console
from wabot.console import accounts
from wabot.db.base import Database
from wabot.db.postgres import PgStore
from wabot.db.store import Store
from wabot.server.adminsite import ADMIN_URL
from wabot.server.keys import STORE

PASSWORD = "trà-sen-2026"
QUICK = "console: {quick_answers: ['Dạ em chào anh/chị', 'Chờ em một chút nhé']}\n"


async def console_app(aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, *, users: tuple[str, ...] = ("lan",),
                      extra: str = "", db: str = "", flows: Path | None = None) -> Client:
    """The real app with the console; `users` made first (admins: names starting with "admin")."""
    for name in users:
        role: accounts.Role = "admin" if name.startswith("admin") else "agent"
        await accounts.add_user(db or tmp_path / "wabot.db", name, PASSWORD, role)
    return await start(aiohttp_client, tmp_path, fake, QUICK + extra, admin=[console.setup], db=db, flows=flows)


def db(client: Client) -> Database:
    """The app's database, SQLite or PostgreSQL (the console's tests run on both)."""
    return client.app[STORE]


async def one(client: Client, query: str) -> Any:
    """The first value `query` selects from the app's database."""
    return (await rows(client, query))[0][0]


async def change(client: Client, statement: str, *args: Any) -> None:
    """Run an UPDATE on the app's database ($1, $2 ... for the arguments, on both stores)."""
    store = client.app[STORE]
    if isinstance(store, PgStore):
        await store.pool.execute(statement, *args)
        return
    assert isinstance(store, Store)
    store.conn.execute(re.sub(r"\$\d+", "?", statement), args)


def browser(client: Client) -> aiohttp.ClientSession:
    """A cookie-keeping session on the admin listener, like a browser (Origin set like one on POSTs)."""
    return aiohttp.ClientSession(base_url=client.app[ADMIN_URL], cookie_jar=aiohttp.CookieJar(unsafe=True))


def origin(client: Client) -> dict[str, str]:
    return {"Origin": client.app[ADMIN_URL]}


async def sign_in(client: Client, session: aiohttp.ClientSession, name: str = "lan",
                  password: str = PASSWORD) -> str:
    """Sign in; return the page's CSRF token."""
    resp = await session.post("/console/login", data={"name": name, "password": password, "next": "/console/"},
                              headers=origin(client))
    page = await resp.text()
    assert resp.status == 200, page
    found = re.search(r'<meta name="csrf" content="([^"]+)"', page)
    assert found, page
    return found.group(1)
