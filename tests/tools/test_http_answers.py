"""An API's error answer reaches the flow (issue 11, item 4): status and body, through a real local API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.enginekit import load
from wabot.db.store import Store
from wabot.engine import advance
from wabot.server.effects import HttpRules, real_http
from wabot.tools.conversation import Conversation, body
from wabot.whatsapp import inbound

FLOWS = """
    flows:
      main:
        steps:
          - http:
              method: POST
              url: "{{ env.API }}/book"
              body: {slot: "{{ message.text }}"}
              save: booking
              on_error: failed
          - end: "Đã đặt: {{ booking.code }}"
          - id: failed
            if: "booking_status == 409"
            then: full
          - end: "Hệ thống đang bận ({{ booking_status }}), bạn thử lại sau nhé."
          - id: full
            end: "Xin lỗi: {{ booking_body.error }}"
"""


@pytest.fixture
async def api() -> AsyncIterator[str]:
    async def book(request: web.Request) -> web.Response:
        slot = (await request.json())["slot"]
        if slot == "9h":
            return web.json_response({"error": "Khung giờ này đã kín"}, status=409)
        if slot == "10h":
            return web.Response(text="upstream down", status=503)
        return web.json_response({"code": "HP12345"})

    app = web.Application()
    app.router.add_post("/book", book)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


async def test_the_status_and_body_of_every_answer_reach_the_flow(tmp_path: Path, api: str) -> None:
    bot = load(tmp_path, FLOWS, env={"API": api})
    store = await Store.open(":memory:")
    loopback = HttpRules(private_hosts=frozenset({api.split("//", 1)[1]}))  # the local API's host:port
    async with aiohttp.ClientSession() as session:

        async def http(call: advance.HttpCall) -> advance.HttpResult:
            return await real_http(session, call, loopback)

        said: list[str | None] = []
        for n, slot in enumerate(("9h", "10h", "11h")):
            chat = Conversation(bot, store=store, customer=inbound.Customer(f"8490000000{n}"), http=http)
            turn = await chat.send(inbound.Text(slot))
            said.append(body(turn.replies[-1]))
    await store.close()
    assert said == ["Xin lỗi: Khung giờ này đã kín", "Hệ thống đang bận (503), bạn thử lại sau nhé.",
                    "Đã đặt: HP12345"]
