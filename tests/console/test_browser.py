"""End to end in a real browser: Playwright driving Debian's Chromium against the real app on loopback.

Signs in, watches a handoff made by a signed webhook appear without a reload, answers (FakeGraph receives
it), sees the tick move, gives back (the bot answers the next message), walks the simulator through the
demo's main menu, and takes a screenshot of each page (into docs/img/ with WABOT_DOCS_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
import shutil
import struct
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests import ROOT
from tests.apptools import PHONE_ID, Client, envelope, message, post, settle, text
from tests.console.kit import PASSWORD, console_app, one
from tests.fakegraph import FakeGraph
from wabot.server.adminsite import ADMIN_URL

playwright = pytest.importorskip("playwright.async_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAN = "84912345678"
PHONE = {"width": 412, "height": 915}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"),
]


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright.async_playwright() as p:
        chromium = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield chromium
        finally:
            await chromium.close()


def shots(tmp_path: Path) -> Path:
    """Where screenshots go: the docs when asked for, else the test's own folder (taken all the same)."""
    folder = ROOT / "docs" / "img" if os.environ.get("WABOT_DOCS_SCREENSHOTS") == "1" else tmp_path / "img"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def signed_in(browser: Any, client: Client, **options: Any) -> Any:
    page = await (await browser.new_context(**options)).new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a page ran a script: {dialog.message}"))
    await page.goto(client.app[ADMIN_URL] + "/console/")
    await page.get_by_test_id("login-user").fill("lan")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url("**/console/")
    return page


async def test_a_person_answers_a_handoff_live_then_gives_it_back(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, browser: Any
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake)
    folder = shots(tmp_path)
    page = await (await browser.new_context(viewport=PHONE, locale="vi-VN")).new_page()
    await page.goto(client.app[ADMIN_URL] + "/console/")
    await page.get_by_test_id("login-user").fill("lan")
    await page.get_by_test_id("login-password").fill("not the password")
    await page.get_by_test_id("login-submit").click()
    assert "Sai tên đăng nhập hoặc mật khẩu" in await page.get_by_test_id("notice").inner_text()
    await page.screenshot(path=str(folder / "console-login.png"))
    await page.context.close()

    page = await signed_in(browser, client, viewport=PHONE)
    assert await page.get_by_test_id("inbox-item").count() == 0
    await post(client, envelope(text(LAN, "hi", name="<script>alert(1)</script> Lan")))
    await settle(client)
    started = time.perf_counter()
    await post(client, envelope(text(LAN, "Gặp nhân viên", name="<script>alert(1)</script> Lan")))
    item = page.get_by_test_id("inbox-item")
    await item.wait_for(timeout=2000)  # no reload: the page hears it over Server-Sent Events
    appeared = time.perf_counter() - started
    assert appeared < 2.0
    assert "<script>alert(1)</script> Lan" in await item.inner_text()
    await page.wait_for_function("document.title.startsWith('(1)')", timeout=2000)
    assert await page.get_by_test_id("badge").inner_text() == "1"
    await page.screenshot(path=str(folder / "console-inbox.png"))

    await item.get_by_role("link").click()
    await page.get_by_test_id("reply-input").fill("Dạ em là Lan, em hỗ trợ mình ngay ạ")
    before = len(fake.sent)
    await page.get_by_test_id("reply-send").click()
    await fake.wait_sent(before + 1)
    assert fake.texts(LAN)[-1] == "Dạ em là Lan, em hỗ trợ mình ngay ạ"
    mine = page.get_by_test_id("message").filter(has_text="em hỗ trợ mình ngay")
    await mine.locator('[data-testid="tick"][title="sent"]').wait_for(timeout=3000)
    wamid = await one(client, "SELECT wamid FROM outbox WHERE agent = 'lan'")
    meta = {"display_phone_number": "1", "phone_number_id": PHONE_ID}
    await post(client, envelope({"messaging_product": "whatsapp", "metadata": meta, "statuses": [
        {"id": wamid, "status": "read", "timestamp": str(int(time.time())), "recipient_id": LAN}]}))
    await mine.locator('[data-testid="tick"][title="read"]').wait_for(timeout=3000)  # live, no reload
    await page.screenshot(path=str(folder / "console-conversation.png"), full_page=True)

    await page.get_by_test_id("resume").click()
    await page.get_by_test_id("take-over").wait_for()
    before = len(fake.sent)
    await post(client, envelope(text(LAN, "menu")))
    await settle(client)
    assert fake.texts(LAN)[before:] == ["Bạn cần gì hôm nay?"]  # the bot is back


async def test_the_simulator_walks_the_demo_and_every_page_renders(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, browser: Any
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake)
    await post(client, envelope(text(LAN, "hi", name="Lan"), text("84987654321", "hi", name="Mai")))
    await settle(client)
    await post(client, envelope(text(LAN, "con mèo"), text("84987654321", "con mèo")))
    await settle(client)
    folder = shots(tmp_path)
    page = await signed_in(browser, client, viewport={"width": 1100, "height": 900})

    await page.goto(client.app[ADMIN_URL] + "/console/simulator")
    await page.get_by_test_id("sim-input").fill("xin chào")
    await page.get_by_test_id("sim-send").click()
    await page.get_by_test_id("sim-message").filter(has_text="Bạn cần gì hôm nay?").wait_for()
    await page.get_by_role("button", name="Cửa hàng ở đâu?").click()
    await page.get_by_test_id("sim-message").filter(has_text="📍 Trà Sen").wait_for()
    await page.get_by_role("button", name="Gặp nhân viên").last.click()
    await page.get_by_test_id("sim-resume").wait_for()
    await page.screenshot(path=str(folder / "console-simulator.png"), full_page=True)
    assert fake.sent and all(b.get("to") != "+84900000000" for b in fake.sent)  # nothing went to WhatsApp

    await page.goto(client.app[ADMIN_URL] + "/console/flows")
    await page.locator("pre.mermaid svg").first.wait_for(timeout=15000)  # drawn in the page by the shipped script
    await page.screenshot(path=str(folder / "console-flows.png"))

    await page.goto(client.app[ADMIN_URL] + "/console/numbers")
    missed = page.get_by_test_id("not-understood")
    assert "con mèo" in await missed.inner_text()
    assert await page.get_by_test_id("funnel").count() >= 1
    await page.screenshot(path=str(folder / "console-numbers.png"), full_page=True)

    await page.goto(client.app[ADMIN_URL] + "/console/customers?q=0912345678")
    assert await page.get_by_test_id("customer-row").count() == 1
    await page.screenshot(path=str(folder / "console-customers.png"))

    await page.get_by_test_id("lang").click()
    assert await page.get_by_role("button", name="Search").count() == 1  # English by the switch


def _png() -> bytes:
    """A real 2×2 PNG, so the browser has to decode what the console streamed."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xd0\x20\x40" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


async def test_a_picture_the_customer_sent_shows_as_a_thumbnail_the_browser_loads(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, browser: Any
) -> None:
    fake.media["1003383421387256"] = (_png(), "image/png")
    client = await console_app(aiohttp_client, tmp_path, fake)
    await post(client, envelope(message(LAN, {"type": "image", "image": {
        "id": "1003383421387256", "mime_type": "image/png", "sha256": "x", "caption": "áo size M"}})))
    await settle(client)
    page = await signed_in(browser, client)
    await page.goto(client.app[ADMIN_URL] + f"/console/c/{LAN}")
    thumb = page.get_by_test_id("media").locator("img")
    await thumb.scroll_into_view_if_needed()
    # decoded by the browser (naturalWidth > 0): same-origin images pass the content security policy
    await page.wait_for_function("document.querySelector('img.thumb')?.naturalWidth === 2", timeout=3000)
    assert await thumb.get_attribute("loading") == "lazy"
