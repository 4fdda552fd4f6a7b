"""The handoff inbox and a conversation: live events, answer, ticks, templates outside the window, give back,
take over. Every reply and resume records who did it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from tests.apptools import PHONE_ID, envelope, post, rows, settle, text
from tests.console.kit import browser, change, console_app, db, one, origin, sign_in
from tests.fakegraph import FakeGraph
from wabot.server.keys import STORE
from wabot.state import CancelTimers, SetTimer, State
from wabot.whatsapp import inbound

LAN = "84912345678"


async def handed_off(client: Any, wa_id: str = LAN, name: str = "Lan") -> None:
    await post(client, envelope(text(wa_id, "hi", name=name)))
    await post(client, envelope(text(wa_id, "nhân viên", name=name)))
    await settle(client)


async def test_a_handoff_appears_live_then_the_answer_reaches_the_customer_and_give_back_wakes_the_bot(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    async with browser(client) as session:
        csrf = await sign_in(client, session)
        page = await (await session.get("/console/")).text()
        assert 'data-testid="inbox-item"' not in page
        events = await session.get("/console/events")
        assert events.headers["Content-Type"] == "text/event-stream"
        await events.content.readuntil(b"\n\n")  # retry: line
        await handed_off(client)
        kinds = []
        async with asyncio.timeout(5):
            while "handoff_opened" not in kinds:
                line = (await events.content.readuntil(b"\n\n")).decode()
                kinds.append(json.loads(line.removeprefix("data: "))["kind"])
        events.close()
        assert (await (await session.get("/console/inbox/count.json")).json()) == {"waiting": 1}
        items = await (await session.get("/console/inbox/items")).text()
        assert items.count('data-testid="inbox-item"') == 1 and "Lan" in items and "nhân viên" in items

        before = len(fake.sent)
        resp = await session.post(f"/console/c/{LAN}/reply", data={"csrf": csrf, "text": "Dạ em là Lan ạ"},
                                  headers=origin(client))
        assert resp.status == 200 and resp.url.path == f"/console/c/{LAN}"
        await fake.wait_sent(before + 1)
        assert fake.texts(LAN)[-1] == "Dạ em là Lan ạ"
        await settle(client)
        page = await (await session.get(f"/console/c/{LAN}/messages")).text()
        assert "bởi lan" in page and 'data-status="sent"' in page

        # a delivery status moves the tick
        wamid = await one(client, "SELECT wamid FROM outbox WHERE agent = 'lan'")
        meta = {"display_phone_number": "1", "phone_number_id": PHONE_ID}
        await post(client, envelope({"messaging_product": "whatsapp", "metadata": meta, "statuses": [
            {"id": wamid, "status": "read", "timestamp": str(int(time.time())), "recipient_id": LAN}]}))
        page = await (await session.get(f"/console/c/{LAN}/messages")).text()
        assert 'tick-read' in page

        resp = await session.post(f"/console/c/{LAN}/resume", data={"csrf": csrf}, headers=origin(client))
        assert resp.status == 200
        await settle(client)
        state = await client.app[STORE].load_state(LAN)
        assert state is not None and state.status != "handoff"
        done = await rows(client, "SELECT name, action FROM staff_actions ORDER BY id")
        assert done == [("lan", "reply"), ("lan", "resume")]
        before = len(fake.sent)
        await post(client, envelope(text(LAN, "menu")))
        await settle(client)
        assert len(fake.sent) > before  # the bot answers again
        resp = await session.post(f"/console/c/{LAN}/resume", data={"csrf": csrf}, headers=origin(client))
        assert resp.status == 409 and "không ở với nhân viên" in await resp.text()


async def test_take_over_pauses_the_bot_until_given_back(aiohttp_client: Any, tmp_path: Path,
                                                        fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    await post(client, envelope(text(LAN, "hi")))
    await settle(client)
    async with browser(client) as session:
        csrf = await sign_in(client, session)
        page = await (await session.post(f"/console/c/{LAN}/take-over", data={"csrf": csrf},
                                         headers=origin(client))).text()
        assert 'data-testid="resume"' in page
        state = await client.app[STORE].load_state(LAN)
        assert state is not None and (state.status, state.flow, state.step) == ("handoff", "main", "menu")
        before = len(fake.sent)
        await post(client, envelope(text(LAN, "2")))
        await settle(client)
        assert len(fake.sent) == before  # the bot stays silent
        items = await (await session.get("/console/inbox/items")).text()
        assert "taken over by lan" in items
        await session.post(f"/console/c/{LAN}/resume", data={"csrf": csrf}, headers=origin(client))
        await settle(client)
        assert fake.texts(LAN)[-1] == "Bạn cần gì hôm nay?"  # the bot asks its question again
        state = await client.app[STORE].load_state(LAN)
        assert state is not None and state.status == "waiting"


async def test_outside_the_24_hour_window_free_text_is_refused_and_templates_are_offered(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    await handed_off(client)
    await change(client, "UPDATE inbox SET received_at = received_at - 25 * 3600")
    async with browser(client) as session:
        csrf = await sign_in(client, session)
        page = await (await session.get(f"/console/c/{LAN}")).text()
        assert 'data-testid="reply-input"' not in page and "Đã quá 24 giờ" in page and ">reengage<" in page
        resp = await session.post(f"/console/c/{LAN}/reply", data={"csrf": csrf, "text": "hello"},
                                  headers=origin(client))
        assert resp.status == 409 and "mẫu tin đã được duyệt" in await resp.text()
        resp = await session.post(f"/console/c/{LAN}/template", data={"csrf": csrf, "name": "greeting"},
                                  headers=origin(client))
        assert resp.status == 400
        await session.post(f"/console/c/{LAN}/template", data={"csrf": csrf, "name": "reengage"},
                           headers=origin(client))
        # the handoff's own replies may still be on their way (PostgreSQL, a busy machine): look for the template
        async with asyncio.timeout(10):
            while not [b for b in fake.sent if b["type"] == "template"]:
                fake.changed.clear()
                await fake.changed.wait()
        await asyncio.sleep(0.5)  # a second copy would come now
        templates = [b for b in fake.sent if b["type"] == "template"]
        assert [b["template"]["name"] for b in templates] == ["hello_world"]
        assert not any(b["type"] == "text" and b["text"]["body"] == "hello" for b in fake.sent)


async def test_a_customer_named_script_is_shown_as_text(aiohttp_client: Any, tmp_path: Path,
                                                        fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    await handed_off(client, name="<script>alert(1)</script>")
    async with browser(client) as session:
        await sign_in(client, session)
        for path in ("/console/", f"/console/c/{LAN}", "/console/customers?q=script"):
            resp = await session.get(path)
            page = await resp.text()
            assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
            assert "script-src" not in resp.headers["Content-Security-Policy"]  # default-src 'self' covers it
        resp = await session.get("/console/c/nobody")
        assert resp.status == 404 and "Không có cuộc trò chuyện" in await resp.text()


async def test_quick_answers_from_config_are_offered(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    await handed_off(client)
    async with browser(client) as session:
        await sign_in(client, session)
        page = await (await session.get(f"/console/c/{LAN}")).text()
        assert 'data-quick="Dạ em chào anh/chị"' in page and 'data-quick="Chờ em một chút nhé"' in page
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        resp = await session.post(f"/console/c/{LAN}/reply", data={"csrf": csrf, "text": "á" * 5000},
                                  headers=origin(client))
        assert resp.status == 400 and "4096" in await resp.text()
        resp = await session.post(f"/console/c/{LAN}/reply", data={"csrf": csrf, "text": "   "},
                                  headers=origin(client))
        assert resp.status == 400 and "trống" in await resp.text()
        assert await one(client, "SELECT COUNT(*) FROM outbox WHERE agent IS NOT NULL") == 0
        english = await (await session.get(f"/console/lang/en?back=/console/c/{LAN}")).text()
        assert "Take over" in english or "Give back to the bot" in english


async def test_the_conversation_page_shows_the_pending_timers(aiohttp_client: Any, tmp_path: Path,
                                                              fake: FakeGraph) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake)
    store = db(client)
    await store.finish_turn(seq=None, customer=LAN, state=State(), bodies=[], now=time.time(),
                            contact=inbound.Customer(LAN, name="Lan"), timers=[
                                SetTimer("wait", time.time() + 3600, "booking", "#4"),
                                SetTimer("remind", time.time() + 60, "booking", "#1")])
    await store.finish_turn(seq=None, customer=LAN, state=State(), bodies=[], now=time.time(),
                            timers=[CancelTimers(("remind",), "answered")])
    async with browser(client) as session:
        await sign_in(client, session)
        page = await (await session.get(f"/console/c/{LAN}")).text()
    assert page.count('data-testid="timer"') == 1
    assert "⏰ chờ rồi đi tiếp · booking/#4 · " in page
