"""`wabot chat`: a scripted session through the demo flows, on the real engine and a throw-away database."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests import DEMO, FIXTURES, load_flows
from wabot.flows.model import Bot
from wabot.tools.chat import Options, chat


def _demo(env: dict[str, str] | None = None) -> Bot:
    bot, problems = load_flows(environ=env)
    assert not [p for p in problems if p.severity == "error"]
    return bot


async def _session(script: str, *, bot: Bot | None = None, options: Options | None = None) -> str:
    out = io.StringIO()
    code = await chat(bot or _demo(), io.StringIO(script), out, options=options or Options(offline=True))
    assert code == 0
    return out.getvalue()


async def test_buttons_and_lists_are_numbered_and_numbers_tap() -> None:
    out = await _session("hi\n1\n2\n")
    assert out.startswith(
        "bot: Xin chào Khách! 👋 Chào mừng đến với Trà Sen.\n"
        "bot: Bạn cần gì hôm nay?\n"
        "     [list: Xem menu]\n"
        "       1. Xem sản phẩm (Trà, bánh và quà tặng)\n"
    )
    assert "       7. English / Tiếng Việt\n" in out
    assert "bot: [image: https://example.com/tra-sen/menu.jpg — Thực đơn tháng này 🍵]\n" in out
    assert out.endswith(
        "bot: Bạn muốn đặt Trà đào không?\n"
        "       1. Đặt ngay\n       2. Xem món khác\n       3. Menu chính\n"
    )


async def test_a_whole_order_with_commands() -> None:
    script = "\n".join([
        "/as Lan", "hi", "2", "4", "2", "12 Lê Lợi, Quận 1", "0912345678", "/state", "1", "/state", "",
    ])
    out = await _session(script)
    assert "(you are now Lan)\nbot: Xin chào Lan!" in out
    assert "bot: 🎉 Đơn từ 500.000 ₫ được miễn phí giao hàng!\n" in out
    assert "(flow order, step confirm, waiting)\n" in out
    assert '  product = "Hộp quà Tết"\n' in out and "  quantity = 2\n" in out
    assert "  total = 700000\n" in out
    assert "bot: ✅ Đã nhận đơn! Tổng cộng 700.000 ₫." in out
    assert out.endswith("(no conversation running, status idle)\n")


async def test_language_image_location_reset_and_handoff() -> None:
    out = await _session("\n".join([
        "hi", "/lang en", "menu", "/image a photo", "/location 10.77 106.70", "nhân viên", "hello?",
        "/resume", "/reset", "/state", "/nonsense", "/help", "/quit", "never read",
    ]))
    assert "(language: en)\nbot: What can we do for you today?\n" in out
    assert out.count("bot: Sorry, I did not get that 😅\n") == 2
    assert ("bot: A person will be with you shortly. 🙏 Type *bot* to go back to the bot.\n"
            "(a person would take over now (Khách cần hỗ trợ);") in out
    assert "bot: Thanks for waiting! The bot is back.\n" in out
    assert "(the conversation starts over: send a message)\n(no conversation running, status idle)\n" in out
    assert "(unknown command '/nonsense'; type /help)\n" in out
    assert "  /lang vi|en        switch the customer's language\n" in out
    assert "never read" not in out


async def test_http_steps_make_real_requests() -> None:
    async def order(request: web.Request) -> web.Response:
        return web.json_response({"status": "đang giao", "eta": "2026-11-28"})

    app = web.Application()
    app.router.add_get("/orders/{code}", order)
    async with TestServer(app, host="127.0.0.1") as server:
        api = str(server.make_url("")).rstrip("/")
        out = await _session("hi\n3\nDH12345\n", bot=_demo({"SHOP_API": api}), options=Options())
    assert f"(http GET {api}/orders/DH12345 → 200)\nbot: Đơn DH12345: đang giao, giao dự kiến 28/11/2026.\n" in out


async def test_offline_answers_http_steps_as_errors() -> None:
    out = await _session("hi\n3\nDH12345\n")
    assert "(http GET http://127.0.0.1:8099/orders/DH12345 → failed: offline: no request was made)\n" in out
    assert "bot: Xin lỗi, hiện không tra được đơn DH12345." in out


async def test_db_keeps_the_conversation_between_sessions(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    await _session("hi\n2\n", options=Options(offline=True, db=db))
    out = await _session("/state\n", options=Options(offline=True, db=db))
    assert out.startswith("(flow order, step #2, waiting)\n  catalog = [{\"id\": \"tra_sen\", \"name\": \"Trà sen\"")


def test_piped_stdin_through_the_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wabot", "chat", str(DEMO), "--offline", "--echo", "--name", "Lan"],
        input="hi\n6\n", capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("> hi\nbot: Xin chào Lan! 👋")
    assert done.stdout.endswith("> 6\nbot: Mình đã báo nhân viên, bạn chờ một chút nhé. 🙏 "
                                "Gõ *bot* nếu muốn quay lại với bot.\n"
                                "(a person would take over now (Khách cần hỗ trợ); the bot stays silent — "
                                "/resume gives it back)\n")
    assert done.stderr == ""


async def test_wait_lets_an_unanswered_handoff_end_as_on_the_server() -> None:
    out = await _session("hi\n6\n/wait 3h\n/wait 2h\n")
    assert out.endswith("(2h later)\nbot: Xin lỗi bạn, nhân viên đang bận chưa trả lời được. "
                        "Bạn nhắn lại cho Trà Sen bất cứ lúc nào nhé!\n")


async def test_wait_fires_the_timers_due_on_the_way_and_timers_lists_the_pending_ones(tmp_path: Path) -> None:
    clinic, _ = load_flows(FIXTURES / "reminders")
    out = await _session("hi\n1\n/timers\n/wait 2h\n/wait 2h\n/wait 1h\n/timers\n", bot=clinic)
    assert "(⏰ timeout at booking/#2 in 20h)\n(⏰ remind at booking/#2 in 2h)\n" in out
    assert out.count("(⏰ reminder 1 of 2 said)\nbot: Bạn còn muốn đặt lịch không?") == 1
    assert out.count("(⏰ reminder 2 of 2 said)\nbot: Bạn còn muốn đặt lịch không?") == 1
    assert out.endswith("(1h later)\n(⏰ timeout at booking/#2 in 15h)\n")
