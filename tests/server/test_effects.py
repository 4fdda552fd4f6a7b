"""Http steps against a real shop API on loopback: customer text in URLs, redirects, private addresses, sizes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.enginekit import Chat, load
from wabot.engine import advance
from wabot.server.effects import HttpRules, http_session, real_http

TOKEN = "shop-secret-token"


class Shop:
    """A fake shop API that records every request's raw path, and answers some paths specially."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []  # (method, raw path with query, body)
        self.server: TestServer | None = None
        self.redirect_to = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.raw_path, await request.read()))
        path = request.path
        if path.startswith("/r/"):
            return _redirect(int(path.removeprefix("/r/")), self.redirect_to)
        if path == "/big":
            return web.Response(body=b"x" * (3 * 1024 * 1024), content_type="application/json")
        if path == "/big-chunked":
            response = web.StreamResponse()
            await response.prepare(request)
            for _ in range(40):
                await response.write(b"y" * 65536)
            return response
        return web.json_response({"path": request.raw_path, "status": "đang giao"})

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")


def _redirect(status: int, to: str) -> web.Response:
    return web.Response(status=status, headers={"Location": to})


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    made = Shop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", made.handle)
    server = TestServer(app, host="127.0.0.1")
    async with server:
        made.server = server
        yield made


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with http_session(HttpRules(frozenset({"127.0.0.1"}))) as made:
        yield made


ALLOW = HttpRules(frozenset({"127.0.0.1"}), max_answer_bytes=1024 * 1024)


def lookup_bot(tmp_path: Path, api: str, *, url: str = "{{ env.SHOP_API }}/orders/{{ code }}", extra: str = "") -> Chat:
    bot = load(tmp_path, f"""
        flows:
          main:
            steps:
              - ask: "Mã đơn?"
                save: code
              - http:
                  url: "{url}"
                  headers: {{Authorization: "Bearer {{{{ env.SHOP_TOKEN }}}}"}}
                  save: order{extra}
              - say: "{{{{ order.status }}}} / {{{{ order_error }}}}"
    """, env={"SHOP_API": api, "SHOP_TOKEN": TOKEN})
    chat = Chat(bot)
    chat.send("hi")
    return chat


async def ask(chat: Chat, code: str, session: aiohttp.ClientSession, rules: HttpRules = ALLOW) -> advance.HttpResult:
    chat.send(code)
    [call] = [e for e in chat.effects if isinstance(e, advance.HttpCall)]
    return await real_http(session, call, rules)


@pytest.mark.parametrize("code", [
    "../../admin", "%2e%2e/%2e%2e/admin", "x?y=1&admin=true", "x#frag", "..", ".", "a/b", "sp ace", "ü",
])
async def test_customer_text_in_a_url_is_one_path_segment(
    tmp_path: Path, shop: Shop, session: aiohttp.ClientSession, code: str
) -> None:
    """Issue 16 item 1: `../../admin` made the shop API receive GET /admin with the shop's token."""
    chat = lookup_bot(tmp_path, shop.url + "/api")
    result = await ask(chat, code, session)
    if code in (".", ".."):  # a whole segment of dots: refused (some servers decode %2E%2E, then climb)
        assert not result.ok and "'..' segment" in result.error and shop.seen == []
        return
    assert result.ok, result
    assert [path for _, path, _ in shop.seen] == [f"/api/orders/{quote(code, safe='')}"]


async def test_query_values_are_encoded_and_an_explicit_path_stays_inside(
    tmp_path: Path, shop: Shop, session: aiohttp.ClientSession
) -> None:
    chat = lookup_bot(tmp_path, shop.url, url="{{ env.SHOP_API }}/search?q={{ code }}&page=1")
    assert (await ask(chat, "x&admin=true#y", session)).ok
    chat = lookup_bot(tmp_path, shop.url, url="{{ env.SHOP_API }}/files/{{ code | urlpath }}")
    assert (await ask(chat, "2026/11/a b", session)).ok
    chat = lookup_bot(tmp_path, shop.url, url="{{ env.SHOP_API }}/files/{{ code | urlpath }}")
    assert "'..' segment" in (await ask(chat, "../../admin", session)).error
    assert [path for _, path, _ in shop.seen] == ["/search?q=x%26admin%3Dtrue%23y&page=1", "/files/2026/11/a%20b"]


async def test_redirects_are_refused_unless_the_step_allows_them_and_never_leave_the_host(
    tmp_path: Path, shop: Shop, session: aiohttp.ClientSession
) -> None:
    shop.redirect_to = "/orders/moved"
    chat = lookup_bot(tmp_path, shop.url, url="{{ env.SHOP_API }}/r/{{ code }}")
    result = await ask(chat, "302", session)
    assert not result.ok and "follow_redirects" in result.error
    follow = "\n                  follow_redirects: true"
    chat = lookup_bot(tmp_path, shop.url, url="{{ env.SHOP_API }}/r/{{ code }}", extra=follow)
    result = await ask(chat, "302", session)
    assert result.ok and result.data == {"path": "/orders/moved", "status": "đang giao"}
    # another host (the same server under another name counts as another host) is never followed
    shop.redirect_to = shop.url.replace("127.0.0.1", "localhost") + "/latest/meta-data/iam"
    for status in ("302", "307"):
        chat = lookup_bot(tmp_path, shop.url, url="{{ env.SHOP_API }}/r/{{ code }}", extra=follow)
        result = await ask(chat, status, session)
        assert not result.ok and "another host" in result.error
    assert [path for _, path, _ in shop.seen] == ["/r/302", "/r/302", "/orders/moved", "/r/302", "/r/307"]


@pytest.mark.parametrize("api", [
    "http://169.254.169.254/latest", "http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1",
    "http://10.0.0.1", "http://[::ffff:127.0.0.1]:1", "http://0.0.0.0:1", "ftp://example.com",
])
async def test_private_addresses_are_refused_before_connecting(
    tmp_path: Path, session: aiohttp.ClientSession, api: str
) -> None:
    chat = lookup_bot(tmp_path, api)
    result = await ask(chat, "DH1", session, HttpRules())
    assert not result.ok and result.error.startswith("refused: "), result


async def test_a_name_that_resolves_to_a_private_address_is_refused_where_it_is_resolved() -> None:
    """DNS is checked where the connection is made, so a name cannot be pointed at an internal host."""
    from wabot.server.effects import _Blocked, _PublicOnly
    from wabot.urls import problem

    assert problem("http://shop.example/x") == ""  # a name passes the first look; its addresses are checked later
    strict = _PublicOnly(frozenset())
    with pytest.raises(_Blocked, match="private address"):
        await strict.resolve("localhost", 80)
    assert (await _PublicOnly(frozenset({"localhost:80"})).resolve("localhost", 80))[0]["host"] in ("127.0.0.1", "::1")
    with pytest.raises(_Blocked):
        await _PublicOnly(frozenset({"localhost:81"})).resolve("localhost", 80)
    await strict.close()


async def test_an_answer_over_the_size_limit_fails_the_step_without_being_read_whole(
    tmp_path: Path, shop: Shop, session: aiohttp.ClientSession
) -> None:
    """Issue 16 item 6: a 1 GiB answer was read whole into memory."""
    for path in ("big", "big-chunked"):
        chat = lookup_bot(tmp_path, shop.url, url="{{ env.SHOP_API }}/" + path)
        result = await ask(chat, "x", session)
        assert not result.ok and "larger than 1048576 bytes" in result.error
        replies = chat.feed(result)
        assert json.dumps([str(r) for r in replies], ensure_ascii=False).count("larger than") == 1
