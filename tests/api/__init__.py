"""Tests of the business API; `started` runs a real app with the API on its admin listener and a live key."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests import FIXTURES
from tests.apptools import Client, config, start
from tests.fakegraph import FakeGraph
from wabot import api
from wabot.api.keys import digest, new_key
from wabot.config import load_settings
from wabot.db.base import open_database

SHOP = FIXTURES / "api"  # flows the API starts (order_shipped)


async def started(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, extra: str = "", *, name: str = "test", db: str = ""
) -> tuple[Client, str]:
    """The app with the business API, on the test flows, and a fresh key for it (named `name`).

    `db`: an SQLite file or a postgresql:// URL (empty: wabot.db in tmp_path), as tests.apptools.start takes.
    """
    extra = f"bot: {{flows: '{SHOP}'}}\n" + extra
    store = await open_database(load_settings(config(tmp_path, fake.url, extra, db=db)).database_target)
    key = new_key()
    assert await store.api.add_key(name, digest(key), now=time.time())
    await store.close()
    client = await start(aiohttp_client, tmp_path, fake, extra, admin=[api.setup], db=db)
    return client, key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
