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
from wabot.db.store import Store

SHOP = FIXTURES / "api"  # flows the API starts (order_shipped)


async def started(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, extra: str = "", *, name: str = "test"
) -> tuple[Client, str]:
    """The app with the business API, on the test flows, and a fresh key for it (named `name`)."""
    extra = f"bot: {{flows: '{SHOP}'}}\n" + extra
    store = await Store.open(load_settings(config(tmp_path, fake.url, extra)).database)
    key = new_key()
    assert await store.add_api_key(name, digest(key), now=time.time())
    await store.close()
    client = await start(aiohttp_client, tmp_path, fake, extra, admin=[api.setup])
    return client, key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
