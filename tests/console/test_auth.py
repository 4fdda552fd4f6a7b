"""Sign-in and the guards: no account, wrong password, lock-out, expired session, CSRF, another origin."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.apptools import envelope, post, settle, text
from tests.console.kit import PASSWORD, browser, change, console_app, db, one, origin, sign_in
from tests.fakegraph import FakeGraph
from wabot.console import accounts
from wabot.db import staff
from wabot.server.keys import STORE

LAN = "84912345678"


async def test_the_console_is_off_until_an_account_exists(aiohttp_client: Any, tmp_path: Path,
                                                          fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, users=(), db=db_target)
    async with browser(client) as session:
        resp = await session.get("/console/")
        assert resp.status == 503 and "wabot user add" in await resp.text()
        resp = await session.post("/console/login", data={"name": "lan", "password": PASSWORD},
                                  headers=origin(client))
        assert resp.status == 503


async def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_it(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    async with browser(client) as session:
        resp = await session.get("/console/numbers", allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/console/login?next=")
        resp = await session.post("/console/login", data={"name": "lan", "password": PASSWORD},
                                  headers=origin(client), allow_redirects=False)
        cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
        assert "Secure" not in cookie  # plain http on loopback; behind an HTTPS proxy it is set
        csrf = await sign_in(client, session)
        assert (await session.get("/console/numbers")).status == 200
        resp = await session.post("/console/logout", data={"csrf": csrf}, headers=origin(client))
        assert resp.url.path == "/console/login"
        assert (await session.get("/console/numbers", allow_redirects=False)).status == 303


async def test_secure_cookie_behind_an_https_proxy(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    async with browser(client) as session:
        resp = await session.post("/console/login", data={"name": "lan", "password": PASSWORD},
                                  headers={"X-Forwarded-Proto": "https"}, allow_redirects=False)
        assert "Secure" in resp.headers["Set-Cookie"]


async def test_wrong_password_then_lock_out_even_for_the_right_one(aiohttp_client: Any, tmp_path: Path,
                                                                  fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    async with browser(client) as session:
        for _ in range(5):
            resp = await session.post("/console/login", data={"name": "lan", "password": "wrong-one"},
                                      headers=origin(client))
            assert resp.status == 401 and "Sai tên đăng nhập hoặc mật khẩu" in await resp.text()
        resp = await session.post("/console/login", data={"name": "lan", "password": PASSWORD},
                                  headers=origin(client))
        assert resp.status == 429 and "Thử lại sau 15 phút" in await resp.text()
        assert not session.cookie_jar.filter_cookies(resp.url)
        resp = await session.post("/console/login", data={"name": "nobody", "password": PASSWORD},
                                  headers=origin(client))
        assert resp.status == 401  # an unknown name reads like a wrong password


async def test_an_expired_session_is_told_to_sign_in_again(aiohttp_client: Any, tmp_path: Path,
                                                           fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    async with browser(client) as session:
        await sign_in(client, session)
        await change(client, "UPDATE sessions SET expires_at = $1", time.time() - 1)
        resp = await session.get("/console/customers")
        assert resp.url.path == "/console/login" and "hết hạn" in await resp.text()
        resp = await session.post(f"/console/c/{LAN}/take-over", data={"csrf": "x"}, headers=origin(client))
        assert resp.status == 401


async def test_a_post_without_the_csrf_token_or_from_another_origin_changes_nothing(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    await post(client, envelope(text(LAN, "hi")))
    await settle(client)
    async with browser(client) as session:
        csrf = await sign_in(client, session)
        resp = await session.post(f"/console/c/{LAN}/take-over", data={}, headers=origin(client))
        assert resp.status == 403 and "Biểu mẫu đã cũ" in await resp.text()
        resp = await session.post(f"/console/c/{LAN}/take-over", data={"csrf": csrf},
                                  headers={"Origin": "https://evil.example"})
        assert resp.status == 403 and "trang web khác" in await resp.text()
        resp = await session.post(f"/console/c/{LAN}/take-over", data={"csrf": csrf},
                                  headers={"Sec-Fetch-Site": "cross-site"})
        assert resp.status == 403
    state = await client.app[STORE].load_state(LAN)
    assert state is not None and state.status == "waiting"
    assert await one(client, "SELECT COUNT(*) FROM staff_actions") == 0


async def test_passwords_are_scrypt_hashes_and_a_new_password_signs_every_device_out(tmp_path: Path) -> None:
    db = tmp_path / "wabot.db"
    assert await accounts.add_user(db, "lan", PASSWORD, "agent") is True
    stored = accounts.hash_password(PASSWORD)
    assert stored.startswith("scrypt$16384$8$1$") and PASSWORD not in stored
    assert accounts.verify_password(PASSWORD, stored) and not accounts.verify_password("other-pass", stored)
    assert not accounts.verify_password(PASSWORD, "md5$abc")
    from wabot.db import sql

    conn = sql.connect(str(db))
    staff.new_session(conn, "t", "lan", "c", time.time(), time.time() + 60)
    assert staff.session(conn, "t", time.time()) == ("lan", "agent", "c")
    assert await accounts.add_user(db, "lan", "a-new-password", "admin") is False
    assert staff.session(conn, "t", time.time()) is None
    assert staff.user(conn, "lan")[1] == "admin"  # type: ignore[index]
    conn.close()
    assert accounts.problem("lan nguyen", PASSWORD) and accounts.problem("lan", "short")


async def test_behind_a_proxy_the_forwarded_host_is_the_origin_checked(aiohttp_client: Any, tmp_path: Path,
                                                                       fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    await post(client, envelope(text(LAN, "hi")))
    await settle(client)
    proxied = {"Origin": "https://admin.example.com", "X-Forwarded-Host": "admin.example.com"}
    async with browser(client) as session:
        csrf = await sign_in(client, session)
        resp = await session.post(f"/console/c/{LAN}/take-over", data={"csrf": csrf}, headers=proxied)
        assert resp.status == 200
    state = await db(client).load_state(LAN)
    assert state is not None and state.status == "handoff"
