"""Files customers send to a question: downloaded from the fake Graph API, checked on their bytes, kept in the
media folder, passed to the shop's API as a file or a signed link it fetches from wabot's admin listener."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.apptools import Client, admin, envelope, message, post, settle, start
from tests.fakegraph import FakeGraph
from tests.server.process import flow_folder
from wabot.server.media import MEDIA_FILES, sniff

LAN = "84912345678"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
PDF = b"%PDF-1.7\n" + b"x" * 200


@dataclass
class Shop:
    """The shop's API: takes an uploaded file, or fetches a link wabot gives it."""

    uploads: list[dict[str, Any]] = field(default_factory=list)
    fetched: list[tuple[int, bytes, str]] = field(default_factory=list)
    server: TestServer | None = None

    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        photo = form["photo"]
        assert isinstance(photo, web.FileField)
        data = photo.file.read()
        self.uploads.append({"code": form["code"], "name": photo.filename, "type": photo.content_type, "data": data})
        return web.json_response({"size": len(data)})

    async def fetch(self, request: web.Request) -> web.Response:
        url = (await request.json())["url"]
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            body = await resp.read()
            self.fetched.append((resp.status, body, resp.headers.get("Content-Type", "")))
        return web.json_response({"size": len(body)})

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    s = Shop()
    app = web.Application()
    app.router.add_post("/upload", s.upload)
    app.router.add_post("/fetch", s.fetch)
    s.server = TestServer(app, host="127.0.0.1")
    await s.server.start_server()
    yield s
    await s.server.close()


def flows(tmp_path: Path, shop: Shop) -> Path:
    return flow_folder(tmp_path, f"""
flows:
  main:
    steps:
      - ask: "Gửi ảnh hóa đơn giúp mình."
        save: photo
        expect: image
        accept: [image/jpeg, image/png]
        max_size: 2 KB
        attempts: 2
        wrong_type: "Chỉ nhận ảnh JPEG hoặc PNG."
        on_fail: gave_up
      - say: "Nhận {{{{ photo.filename }}}} ({{{{ photo.mime }}}}, {{{{ photo.size }}}} bytes)"
      - http:
          url: "{shop.url}/upload"
          method: POST
          body: {{code: "A1"}}
          files: {{photo: photo}}
          save: upload
      - http:
          url: "{shop.url}/fetch"
          method: POST
          body: {{url: "{{{{ photo.url }}}}"}}
          save: fetched
      - say: "Đã gửi {{{{ upload.size }}}} và {{{{ fetched.size }}}} bytes"
  gave_up:
    steps:
      - say: "Thôi nhé, gặp nhân viên."
""", "bot.yaml")


async def started(aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, shop: Shop, extra: str = "") -> Client:
    host = shop.url.split("//", 1)[1]
    return await start(aiohttp_client, tmp_path, fake, f"http: {{private_hosts: ['{host}']}}\n" + extra,
                       flows=flows(tmp_path, shop))


async def photo(client: Client, fake: FakeGraph, media_id: str, *, replies: int) -> list[str]:
    before = len(fake.sent)
    assert await post(client, envelope(message(LAN, {"type": "image", "image": {
        "id": media_id, "mime_type": "image/jpeg", "sha256": "x"}}))) == 200
    await fake.wait_sent(before + replies, within=10)
    await settle(client)
    return fake.texts(LAN)[before:]


async def hello(client: Client, fake: FakeGraph) -> None:
    assert await post(client, envelope(message(LAN, {"type": "text", "text": {"body": "chào"}}))) == 200
    await fake.wait_sent(1)
    await settle(client)


async def test_a_photo_is_downloaded_checked_kept_and_reaches_the_shop_as_a_file_and_as_a_link(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, shop: Shop
) -> None:
    client = await started(aiohttp_client, tmp_path, fake, shop)
    fake.media["m1"] = (JPEG, "image/jpeg")
    await hello(client, fake)
    said = await photo(client, fake, "m1", replies=2)
    assert said[0].startswith("Nhận image-") and f"(image/jpeg, {len(JPEG)} bytes)" in said[0]
    assert said[1] == f"Đã gửi {len(JPEG)} và {len(JPEG)} bytes"
    assert shop.uploads == [{"code": "A1", "name": said[0].split()[1], "type": "image/jpeg", "data": JPEG}]
    assert shop.fetched == [(200, JPEG, "image/jpeg")]
    kept = [p for p in (tmp_path / "media").iterdir() if not p.name.startswith(".") and p.suffix != ".json"]
    assert [p.read_bytes() for p in kept] == [JPEG]  # in the folder, not in the database
    assert not (await client.app[MEDIA_FILES].open("0" * 32))


async def test_a_file_too_large_or_of_another_type_than_its_header_says_is_refused_with_retry_and_on_fail(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, shop: Shop
) -> None:
    client = await started(aiohttp_client, tmp_path, fake, shop)
    fake.media["big"] = (b"\xff\xd8\xff" + b"x" * 5000, "image/jpeg")  # over the step's 2 KB
    fake.media["fake"] = (PDF, "image/jpeg")  # Meta's header says a photo; the bytes are a PDF
    await hello(client, fake)
    said = await photo(client, fake, "big", replies=2)
    assert said == ["Tệp này lớn quá, bạn gửi tệp nhỏ hơn giúp mình nhé.", "Gửi ảnh hóa đơn giúp mình."]
    said = await photo(client, fake, "fake", replies=1)
    assert said == ["Thôi nhé, gặp nhân viên."]  # the second wrong answer: attempts: 2, then on_fail
    assert not shop.uploads
    assert [p for p in (tmp_path / "media").glob("*.json")] == []


async def test_the_authors_words_for_a_wrong_type_and_a_file_meta_no_longer_has(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    client = await started(aiohttp_client, tmp_path, fake, shop)
    fake.media["fake"] = (PDF, "image/png")
    await hello(client, fake)
    assert await photo(client, fake, "fake", replies=2) == ["Chỉ nhận ảnh JPEG hoặc PNG.", "Gửi ảnh hóa đơn giúp mình."]
    said = await photo(client, fake, "expired", replies=1)  # never in the fake: Meta's "unknown media" answer
    assert said == ["Thôi nhé, gặp nhân viên."]
    assert "could not be downloaded (media expired): Meta no longer has it" in caplog.text


async def test_a_signed_link_works_until_it_expires_and_refuses_tampering_and_unknown_files(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, shop: Shop
) -> None:
    client = await started(aiohttp_client, tmp_path, fake, shop)
    files = client.app[MEDIA_FILES]
    fake.media["m1"] = (PNG, "image/png")
    await hello(client, fake)
    await photo(client, fake, "m1", replies=2)
    token = next(p.stem for p in (tmp_path / "media").glob("*.json"))
    good = files.link(token)
    path = good.split("/media/", 1)[1]
    async with admin(client) as s:
        async def status(p: str) -> int:
            async with s.get(f"media/{p}") as resp:
                await resp.read()
                return resp.status

        assert await status(path) == 200
        expires, sig = path.split("?", 1)[1].split("&")
        bumped = int(expires.split("=")[1]) + 1
        assert await status(f"{token}?expires={bumped}&{sig}") == 403  # a later expiry the signature does not cover
        assert await status(f"{token}?{expires}&sig={'0' * 64}") == 403
        assert await status(f"{token}?{expires}") == 403
        unknown = files.link("f" * 32).split("/media/", 1)[1]
        assert await status(unknown) == 404  # signed, but never issued
        assert await status(f"..%2F..%2Fwabot.db?{expires}&{sig}") in (403, 404)
        files.clock = lambda: 4e9  # the link's time is over
        assert await status(path) == 403


async def test_a_link_handed_on_after_a_wait_is_signed_again_when_the_wait_ends(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, shop: Shop
) -> None:
    """A wait may outlast media.link_hours: the link the flow hands to the shop after it must still open."""
    folder = flow_folder(tmp_path, f"""
flows:
  main:
    steps:
      - ask: "Gửi ảnh hóa đơn giúp mình."
        save: photo
        expect: image
      - wait: 1s
      - http:
          url: "{shop.url}/fetch"
          method: POST
          body: {{url: "{{{{ photo.url }}}}"}}
          save: fetched
      - say: "Shop nhận {{{{ fetched.size }}}} bytes"
""", "bot.yaml")
    host = shop.url.split("//", 1)[1]
    client = await start(aiohttp_client, tmp_path, fake, f"http: {{private_hosts: ['{host}']}}\n", flows=folder)
    files = client.app[MEDIA_FILES]
    fake.media["m1"] = (PNG, "image/png")
    await hello(client, fake)
    before = len(fake.sent)
    assert await post(client, envelope(message(LAN, {"type": "image", "image": {
        "id": "m1", "mime_type": "image/png", "sha256": "x"}}))) == 200
    await settle(client)
    files.clock = lambda: 4e9  # while the flow waits, the link's 24 hours pass
    await fake.wait_sent(before + 1, within=20)
    assert fake.texts(LAN)[before:] == [f"Shop nhận {len(PNG)} bytes"]
    assert shop.fetched == [(200, PNG, "image/png")]


async def test_link_mode_downloads_when_the_shop_first_fetches_and_the_purge_removes_old_files(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, shop: Shop
) -> None:
    client = await started(aiohttp_client, tmp_path, fake, shop, "media: {download: link}\n")
    fake.media["m1"] = (JPEG, "image/jpeg")
    await hello(client, fake)
    said = await photo(client, fake, "m1", replies=2)
    assert said[1] == f"Đã gửi {len(JPEG)} và {len(JPEG)} bytes"
    assert shop.fetched == [(200, JPEG, "image/jpeg")]
    files = client.app[MEDIA_FILES]
    assert await asyncio.to_thread(files.purge, before=0) == 0
    assert await asyncio.to_thread(files.purge, before=4e9) == 1
    assert [p for p in (tmp_path / "media").iterdir() if not p.name.startswith(".")] == []


def test_the_bytes_decide_the_type_not_the_name() -> None:
    assert sniff(JPEG) == "image/jpeg" and sniff(PNG) == "image/png" and sniff(PDF, "photo.jpg") == "application/pdf"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"PK\x03\x04rest", "hop-dong.docx").endswith("wordprocessingml.document")
    assert sniff(b"<html><script>", "a.png") == "application/octet-stream"
