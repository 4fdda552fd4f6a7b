"""The hub: what the running server publishes for the layers above (live console pages, event feeds)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.apptools import PHONE_ID, envelope, post, settle, start, text
from tests.fakegraph import FakeGraph
from wabot.server.hub import Happening, Hub
from wabot.server.keys import HUB, STORE
from wabot.whatsapp.window import SERVICE_WINDOW_SECONDS, closes_at, is_open

LAN = "84901234567"


def drain(queue: asyncio.Queue[Happening]) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    while not queue.empty():
        h = queue.get_nowait()
        seen.append((h.kind, h.customer))
    return seen


async def test_a_turn_a_handoff_and_a_status_are_published(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    client = await start(aiohttp_client, tmp_path, fake)
    with client.app[HUB].subscribe() as queue:
        await post(client, envelope(text(LAN, "hi")))
        await settle(client)
        assert drain(queue) == [("message_in", LAN), ("replies_queued", LAN), ("turn", LAN)]
        await post(client, envelope(text(LAN, "nhân viên")))
        await settle(client)
        kinds = drain(queue)
        assert ("handoff_opened", LAN) in kinds
        meta = {"display_phone_number": "1", "phone_number_id": PHONE_ID}
        status = {"messaging_product": "whatsapp", "metadata": meta,
                  "statuses": [{"id": "wamid.x", "status": "read", "timestamp": "1764000001", "recipient_id": LAN}]}
        await post(client, envelope(status))
        assert drain(queue) == [("status", LAN)]
    assert client.app[HUB].subscribers == 0
    last = await client.app[STORE].last_inbound(LAN)
    assert last is not None and is_open(last, now=time.time())
    assert await client.app[STORE].last_inbound("84900000000") is None


async def test_a_subscriber_that_falls_behind_is_told_once_and_holds_nobody_back() -> None:
    hub = Hub(backlog=4)
    with hub.subscribe() as slow, hub.subscribe() as quick:
        for n in range(10):
            hub.publish("message_in", f"c{n}")
            if not quick.empty():
                quick.get_nowait()
        kinds = [h.kind for h in drain_all(slow)]
        assert kinds == ["message_in"] * 3 + ["overflow"]


async def test_a_subscriber_of_some_kinds_hears_only_those_and_the_hub_says_who_wants_what() -> None:
    hub = Hub()
    assert not hub.wants("turn")
    with hub.subscribe(kinds=frozenset({"turn"})) as turns:
        assert hub.wants("turn") and not hub.wants("message_in") and not hub.wants("handoff_opened")
        for kind in ("message_in", "turn", "replies_queued", "turn"):
            hub.publish(kind, "c1")
        assert [h.kind for h in drain_all(turns)] == ["turn", "turn"]
        hub.relay = lambda happening: None  # another instance hears handoffs
        assert hub.wants("handoff_opened") and not hub.wants("message_in")
        with hub.subscribe() as everything:
            assert hub.wants("message_in")
            hub.publish("message_in", "c2")
            assert [h.kind for h in drain_all(everything)] == ["message_in"] and turns.empty()
    assert not hub.wants("turn")


def drain_all(queue: asyncio.Queue[Happening]) -> list[Happening]:
    out: list[Happening] = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def test_the_24_hour_window() -> None:
    assert not is_open(None, now=1000.0) and closes_at(None) is None
    assert is_open(1000.0, now=1000.0 + SERVICE_WINDOW_SECONDS - 1)
    assert not is_open(1000.0, now=1000.0 + SERVICE_WINDOW_SECONDS)
