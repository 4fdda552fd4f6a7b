"""Media a customer sent, opened from the console: fetched from (fake) Meta for signed-in staff only."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.apptools import envelope, message, post, settle
from tests.console.kit import browser, console_app, sign_in
from tests.fakegraph import FakeGraph
from tests.server.process import flow_folder
from wabot.console import media
from wabot.server.keys import SENDER
from wabot.server.media import MEDIA_FILES

LAN = "84912345678"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 300  # bigger than one chunk
PDF = b"%PDF-1.4 bang gia\n"


async def sent_media(client: Any) -> None:
    await post(client, envelope(message(LAN, {"type": "image", "image": {
        "id": "1003383421387256", "mime_type": "image/jpeg", "sha256": "x", "caption": "áo size M"}})))
    await post(client, envelope(message(LAN, {"type": "document", "document": {
        "id": "2004", "mime_type": "application/pdf", "sha256": "y", "filename": "bảng giá.pdf"}})))
    await settle(client)


async def test_signed_in_staff_see_a_thumbnail_and_get_the_bytes_with_safe_headers(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    fake.media.update({"1003383421387256": (JPEG, "image/jpeg"), "2004": (PDF, "application/pdf")})
    client = await console_app(aiohttp_client, tmp_path, fake)
    await sent_media(client)
    async with browser(client) as session:
        await sign_in(client, session)
        page = await (await session.get(f"/console/c/{LAN}/messages")).text()
        assert '<img class="thumb" src="/console/media/1003383421387256" loading="lazy"' in page
        assert 'href="/console/media/2004"' in page and "bảng giá.pdf" in page

        resp = await session.get("/console/media/1003383421387256")
        assert resp.status == 200 and await resp.read() == JPEG
        assert resp.headers["Content-Type"] == "image/jpeg"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Content-Disposition"].startswith("inline")

        resp = await session.get("/console/media/2004")
        assert resp.status == 200 and await resp.read() == PDF
        assert resp.headers["Content-Type"] == "application/pdf"
        assert resp.headers["Content-Disposition"] == "attachment; filename*=UTF-8''b%E1%BA%A3ng%20gi%C3%A1.pdf"
    downloads = [r for r in fake.requests if r.path.startswith("/whatsapp_business/")]
    assert [r.headers["Authorization"] for r in downloads] == ["Bearer test-token"] * 2


async def test_refused_without_a_session_for_ids_not_in_the_inbox_and_when_meta_forgot_the_file(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    fake.media["9999"] = (JPEG, "image/jpeg")  # Meta has it, but no customer sent it to this shop
    client = await console_app(aiohttp_client, tmp_path, fake)
    await sent_media(client)
    async with browser(client) as session:
        resp = await session.get("/console/media/1003383421387256", allow_redirects=False)
        assert resp.status in (302, 303, 401) and resp.headers.get("Content-Type", "") != "image/jpeg"
        await sign_in(client, session)
        asked = len(fake.requests)
        for unknown in ("9999", "no-such-id", "1%22%3E"):
            resp = await session.get(f"/console/media/{unknown}")
            assert resp.status == 404
            assert "Không có tin nhắn nào của khách trong hộp thư mang tệp" in await resp.text()
        assert len(fake.requests) == asked  # never passed on to Meta: no open proxy

        resp = await session.get("/console/media/1003383421387256")  # in the inbox; Meta no longer has it
        assert resp.status == 410 and "Meta không còn giữ tệp này" in await resp.text()

        session.cookie_jar.update_cookies({"lang": "en"})
        fake.media["2004"] = (b"x" * (media.LIMIT + 1), "application/pdf")
        resp = await session.get("/console/media/2004")
        assert resp.status == 413 and "too large to show here" in await resp.text()

        client.app[SENDER].graph = None  # what dry-run is: no token, no Graph client
        resp = await session.get("/console/media/2004")
        assert resp.status == 503 and "dry-run" in await resp.text()


async def test_a_download_url_meta_no_longer_serves_and_a_file_bigger_than_meta_said(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    fake.media["2004"] = (PDF, "application/pdf")
    client = await console_app(aiohttp_client, tmp_path, fake)
    await sent_media(client)
    async with browser(client) as session:
        await sign_in(client, session)
        fake.script(404, text="Not Found")  # the url's 5 minutes are over, or the file was deleted meanwhile
        resp = await session.get("/console/media/2004")
        assert resp.status == 410 and "Meta không còn giữ tệp này" in await resp.text()
        fake.script(200, text="x" * (media.LIMIT + 1))  # more bytes than the cap, whatever Meta's lookup said
        resp = await session.get("/console/media/2004")
        assert resp.status == 413


async def test_a_file_a_question_saved_is_shown_from_the_copy_wabot_kept_after_meta_forgot_it(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    flows = flow_folder(tmp_path, """
flows:
  main:
    steps:
      - ask: "Gửi ảnh hóa đơn giúp mình."
        save: photo
        expect: image
      - end: "Đã nhận."
""", "bot.yaml")
    client = await console_app(aiohttp_client, tmp_path, fake, flows=flows)
    fake.media["1003383421387256"] = (JPEG, "image/jpeg")
    await post(client, envelope(message(LAN, {"type": "text", "text": {"body": "chào"}})))
    await settle(client)
    await post(client, envelope(message(LAN, {"type": "image", "image": {
        "id": "1003383421387256", "mime_type": "image/png", "sha256": "x"}})))  # its bytes say JPEG
    await fake.wait_sent(2)
    await settle(client)
    del fake.media["1003383421387256"]  # Meta forgets a file after about 30 days; wabot keeps it for retention_days
    async with browser(client) as session:
        await sign_in(client, session)
        resp = await session.get("/console/media/1003383421387256")
        assert resp.status == 200 and await resp.read() == JPEG
        assert resp.headers["Content-Type"] == "image/jpeg" and resp.headers["X-Content-Type-Options"] == "nosniff"
    files = client.app[MEDIA_FILES]
    assert await asyncio.to_thread(files.purge, before=4e9) == 1  # the retention purge forgets the id too
    assert files.kept("1003383421387256") is None
