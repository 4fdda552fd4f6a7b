"""Hot reload: a changed flow file is validated and swapped in; a broken one keeps the last good flows."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import DEMO, bot_settings, load_flows
from wabot.config import BotSettings
from wabot.db.store import Store
from wabot.flows.model import Bot
from wabot.server.reload import Reloader, snapshot
from wabot.tools.conversation import Conversation, describe, offline_http
from wabot.whatsapp import inbound

GREETING = "Xin chào {{ contact.name or 'bạn' }}! 👋 Chào mừng đến với Trà Sen."


@dataclass
class Holder:
    bot: Bot


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    for file in DEMO.glob("*.yaml"):
        shutil.copy(file, folder / file.name)
    return folder


def _settings(flows: Path) -> BotSettings:
    return bot_settings(flows)


def _load(flows: Path) -> Bot:
    bot, problems = load_flows(flows)
    assert not [p for p in problems if p.severity == "error"]
    return bot


def _edit(file: Path, old: str, new: str) -> None:
    text = file.read_text(encoding="utf-8")
    assert old in text
    file.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    s = await Store.open(":memory:")
    yield s
    await s.close()


async def _say(holder: Holder, store: Store, text: str) -> list[str]:
    """One customer message, answered with whatever Bot the holder has now (as the dispatcher does per turn)."""
    chat = Conversation(holder.bot, store=store, customer=inbound.Customer("84900000001", name="Lan"),
                        http=offline_http)
    turn = await chat.send(inbound.Text(text))
    return [line for reply in turn.replies for line in describe(reply)]


async def test_an_edit_shows_up_in_the_next_reply(flows: Path, store: Store) -> None:
    holder = Holder(_load(flows))
    reloader = Reloader(holder, settings=_settings(flows), env={})
    await reloader.start()
    try:
        assert (await _say(holder, store, "hi"))[0] == "Xin chào Lan! 👋 Chào mừng đến với Trà Sen."
        assert await reloader.check() is False  # nothing changed
        _edit(flows / "main.yaml", GREETING, "Chào {{ contact.name }}, Trà Sen xin nghe!")
        assert await reloader.check() is True
        assert (await _say(holder, store, "hủy"))[0] == "Chào Lan, Trà Sen xin nghe!"
    finally:
        await reloader.stop()


async def test_a_broken_edit_keeps_the_last_good_flows(
    flows: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    holder = Holder(_load(flows))
    good = holder.bot
    reloader = Reloader(holder, settings=_settings(flows), env={})
    await reloader.start()
    _edit(flows / "main.yaml", GREETING, "Chào bạn mới!")
    _edit(flows / "shop.yaml", "goto: order.quantity", "goto: order.quantty")
    with caplog.at_level(logging.ERROR, logger="wabot.server.reload"):
        assert await reloader.check() is False
    assert holder.bot is good
    assert "the flow files changed but have 1 error(s); still serving the flows loaded before" in caplog.text
    assert f"{flows / 'shop.yaml'}:" in caplog.text and "'quantty'" in caplog.text
    assert (await _say(holder, store, "hi"))[0] == "Xin chào Lan! 👋 Chào mừng đến với Trà Sen."
    _edit(flows / "shop.yaml", "goto: order.quantty", "goto: order.quantity")
    assert await reloader.check() is True
    assert (await _say(holder, store, "hủy"))[0] == "Chào bạn mới!"
    await reloader.stop()


async def test_added_and_removed_files_are_noticed(flows: Path, store: Store) -> None:
    holder = Holder(_load(flows))
    reloader = Reloader(holder, settings=_settings(flows), env={})
    await reloader.start()
    extra = flows / "promo.yaml"
    extra.write_text('flows:\n  promo:\n    steps:\n      - say: "Giảm 20% hôm nay!"\n'
                     'triggers:\n  - words: ["khuyến mãi"]\n    goto: promo\n', encoding="utf-8")
    assert await reloader.check() is True
    assert "promo" in holder.bot.flows
    assert await _say(holder, store, "khuyến mãi") == ["Giảm 20% hôm nay!"]
    extra.unlink()
    assert await reloader.check() is True
    assert "promo" not in holder.bot.flows
    (flows / "tests").mkdir()
    (flows / "tests" / "x.yaml").write_text("tests: []\n", encoding="utf-8")
    assert await reloader.check() is False  # sub-folders (flows/tests) are not flow files
    await reloader.stop()


def test_a_same_size_edit_changes_the_snapshot(flows: Path) -> None:
    before = snapshot(flows)
    _edit(flows / "main.yaml", "Trà Sen.", "Trà Sen!")
    after = snapshot(flows)
    assert set(before) == set(after) == {str(p) for p in flows.glob("*.yaml")}
    assert before[str(flows / "main.yaml")] != after[str(flows / "main.yaml")]


async def test_the_background_task_reloads_by_itself(flows: Path) -> None:
    holder = Holder(_load(flows))
    good = holder.bot
    reloader = Reloader(holder, settings=_settings(flows), env={}, interval=0.02)
    await reloader.start()
    try:
        _edit(flows / "main.yaml", GREETING, "Chào!")
        for _ in range(250):
            if holder.bot is not good:
                break
            await asyncio.sleep(0.02)
        assert holder.bot is not good
    finally:
        await reloader.stop()
    assert reloader.task is None


async def test_a_conversation_whose_step_is_gone_starts_over(flows: Path, store: Store) -> None:
    holder = Holder(_load(flows))
    reloader = Reloader(holder, settings=_settings(flows), env={})
    await reloader.start()
    await _say(holder, store, "hi")
    await _say(holder, store, "Đặt hàng")
    await _say(holder, store, "Trà sen")  # now waiting at order.quantity
    state = await store.load_state("84900000001")
    assert state is not None and (state.flow, state.step) == ("order", "quantity")
    _edit(flows / "shop.yaml", "      - id: quantity\n", "      - id: so_luong\n")
    _edit(flows / "shop.yaml", "goto: order.quantity", "goto: order.so_luong")
    text = (flows / "shop.yaml").read_text(encoding="utf-8").replace("goto: quantity", "goto: so_luong")
    (flows / "shop.yaml").write_text(text, encoding="utf-8")
    assert await reloader.check() is True
    lines = await _say(holder, store, "2")
    assert "Bạn cần gì hôm nay?" in lines  # back at the start, not stuck
    assert any("bắt đầu lại từ đầu" in line for line in lines)  # and told why
    state = await store.load_state("84900000001")
    assert state is not None and (state.flow, state.step) == ("main", "menu")
    await reloader.stop()


async def test_a_handoff_whose_flow_is_gone_is_not_stuck_after_resume(flows: Path, store: Store) -> None:
    holder = Holder(_load(flows))
    await _say(holder, store, "hi")
    await _say(holder, store, "nhân viên")
    _edit(flows / "support.yaml", "  human:\n", "  nhan_vien:\n")
    for name in ("main.yaml", "shop.yaml", "shipping.yaml"):  # the files that go to the flow human
        text = (flows / name).read_text(encoding="utf-8").replace("goto: human", "goto: nhan_vien")
        (flows / name).write_text(text.replace("on_fail: human", "on_fail: nhan_vien"), encoding="utf-8")
    holder.bot = _load(flows)
    chat = Conversation(holder.bot, store=store, customer=inbound.Customer("84900000001"), http=offline_http)
    turn = await chat.resume()
    assert turn.state.status != "handoff", "after a person gives the conversation back the bot must answer again"


def _webhook(text: str, n: int) -> bytes:
    message = {"from": "84900000001", "id": f"wamid.in.{n}", "timestamp": "1700000000", "type": "text",
               "text": {"body": text}}
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550000000", "phone_number_id": "123456"},
             "contacts": [{"profile": {"name": "Lan"}, "wa_id": "84900000001"}], "messages": [message]}
    payload = {"object": "whatsapp_business_account",
               "entry": [{"id": "999", "changes": [{"field": "messages", "value": value}]}]}
    return json.dumps(payload).encode()


async def test_a_running_server_answers_with_the_edited_flows(
    flows: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:

    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from wabot.config import load_settings
    from wabot.server import reload
    from wabot.server.app import create_app
    from wabot.server.keys import DISPATCHER
    from wabot.server.webhook import sign

    sent: list[dict[str, Any]] = []

    async def messages(request: web.Request) -> web.Response:
        sent.append(await request.json())
        return web.json_response({"messaging_product": "whatsapp", "messages": [{"id": f"wamid.out.{len(sent)}"}]})

    graph = web.Application()
    graph.router.add_post("/v25.0/123456/messages", messages)
    async with TestServer(graph, host="127.0.0.1") as fake_meta:
        config = tmp_path / "config.yaml"
        config.write_text(
            f"whatsapp: {{token: t, phone_number_id: '123456', app_secret: s3cret, verify_token: v,"
            f" api_url: '{str(fake_meta.make_url('')).rstrip('/')}'}}\n"
            f"database: {{path: '{tmp_path / 'wabot.db'}'}}\n"
            "admin: {port: 0}\n"
            f"bot: {{flows: '{flows}'}}\n", encoding="utf-8")
        settings = load_settings(config, environ={})
        monkeypatch.setattr(reload, "INTERVAL", 0.05)
        client = await aiohttp_client(create_app(settings, _load(flows)))

        async def say(text: str, n: int) -> list[str]:
            body = _webhook(text, n)
            resp = await client.post("/webhook/whatsapp", data=body,
                                     headers={"X-Hub-Signature-256": sign("s3cret", body),
                                              "Content-Type": "application/json"})
            assert resp.status == 200
            for _ in range(200):
                texts = [m["text"]["body"] for m in sent if m.get("type") == "text"]
                if texts:
                    sent.clear()
                    return texts
                await asyncio.sleep(0.02)
            raise AssertionError("no reply reached the fake Graph API")

        assert (await say("hi", 1))[0] == "Xin chào Lan! 👋 Chào mừng đến với Trà Sen."
        before = client.app[DISPATCHER].bot
        _edit(flows / "main.yaml", GREETING, "Chào {{ contact.name }}, Trà Sen xin nghe!")
        for _ in range(200):
            if client.app[DISPATCHER].bot is not before:
                break
            await asyncio.sleep(0.02)
        assert (await say("hủy", 2))[0] == "Chào Lan, Trà Sen xin nghe!"
        _edit(flows / "main.yaml", "Trà Sen xin nghe!", "{{ broken")
        for _ in range(200):
            if "still serving the flows loaded before" in caplog.text:
                break
            await asyncio.sleep(0.02)
        assert f"{flows / 'main.yaml'}:" in caplog.text
        assert (await say("hủy", 3))[0] == "Chào Lan, Trà Sen xin nghe!"  # the broken edit was not taken


async def test_another_instances_reload_is_looked_at_at_once_and_other_flows_are_named(
    flows: Path, tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Several instances: a notice makes a sharing instance reload without waiting; one with other files says so."""
    other = tmp_path / "other"  # a machine the deploy missed: the old files
    shutil.copytree(flows, other)
    holders = [Holder(_load(f)) for f in (flows, flows, other)]
    a, b, c = (Reloader(h, settings=_settings(f), env={}, interval=3600)
               for h, f in zip(holders, (flows, flows, other), strict=True))
    for r in (a, b, c):
        await r.start()
    assert a.served == b.served == c.served
    told: list[str] = []
    a.on_reload = told.append
    _edit(flows / "main.yaml", GREETING, "Chào {{ contact.name }}, shop đây!")
    assert await a.check()
    assert told == [a.served] and a.served != c.served
    with caplog.at_level(logging.WARNING, logger="wabot.server.reload"):
        b.heard(a.served, "instance a")
        c.heard(a.served, "instance a")
        await asyncio.gather(*b.looks, *c.looks)
    assert b.served == a.served  # reloaded on the notice, not after its own (hour-long) polling interval
    assert "Chào Lan, shop đây!" in await _say(holders[1], store, "hi")
    [warning] = [r.getMessage() for r in caplog.records]
    assert f"instance a reloaded its flows (fingerprint {a.served}) but this one serves other flows" in warning
    assert f"({c.served}, from {other})" in warning
    for r in (a, b, c):
        await r.stop()
