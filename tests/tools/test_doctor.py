"""`wabot doctor` against a fake Graph API: each failure is told apart and comes with its fix."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests import DEMO, FIXTURES, demo_bot
from wabot.config import Settings, load_settings
from wabot.flows.model import Bot
from wabot.server.app import create_app
from wabot.tools import doctor

PHONE_ID = "123456"


def _error(code: int, message: str, subcode: int | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


# token -> (HTTP status, body) the fake Graph API answers for the phone number look-up
ANSWERS: dict[str, tuple[int, dict[str, Any]]] = {
    "good": (200, {"verified_name": "Trà Sen", "display_phone_number": "+84 28 1234 5678", "id": PHONE_ID,
                   "quality_rating": "GREEN"}),
    "expired": (401, _error(190, "Error validating access token: Session has expired on Tuesday.", 463)),
    "no-permission": (403, _error(200, "(#200) Requires whatsapp_business_management permission")),
}


@pytest.fixture
async def meta() -> AsyncIterator[str]:
    """The fake Graph API's base URL; it knows one phone number id and answers by token."""

    async def number(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if request.match_info["id"] != PHONE_ID:
            return web.json_response(_error(
                100, f"Unsupported get request. Object with ID '{request.match_info['id']}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this operation.", 33), status=400)
        status, body = ANSWERS.get(token, (401, _error(190, "Invalid OAuth access token - Cannot parse access token")))
        return web.json_response(body, status=status)

    graph = web.Application()
    graph.router.add_get("/v25.0/{id}", number)
    async with TestServer(graph, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, *, api_url: str = "http://127.0.0.1:9", token: str = "good", phone: str = PHONE_ID,
            verify: str = "v3rify", port: int | None = None, flows: Path = DEMO, desk: bool = True) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"whatsapp: {{token: '{token}', phone_number_id: '{phone}', app_secret: s, verify_token: '{verify}',"
        f" api_url: '{api_url}', timeout: 2}}\n"
        f"server: {{host: 127.0.0.1, port: {port or _free_port()}}}\n"
        f"database: {{path: '{tmp_path / 'wabot.db'}'}}\n"
        f"admin: {{port: 0{', token: desk-secret' if desk else ''}}}\n"
        f"bot: {{flows: '{flows}'}}\n", encoding="utf-8")
    return config


def _settings(config: Path) -> Settings:
    return load_settings(config, environ={})


async def _doctor(config: Path) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = await doctor.report(_settings(config), out)
    return code, out.getvalue().splitlines()


def _line(lines: list[str], check: str) -> str:
    """The one line of this check: the status word, then the check's name."""
    found = [line for line in lines if line[5:].startswith(check)]
    assert len(found) == 1, lines
    return found[0]


async def test_a_good_token_passes_every_check(tmp_path: Path, meta: str) -> None:
    code, lines = await _doctor(_config(tmp_path, api_url=meta))
    assert code == 0, lines
    assert len(lines) == 4
    assert all(line.startswith("ok   ") for line in lines), lines
    assert "Trà Sen (+84 28 1234 5678)" in _line(lines, "Graph API")
    assert "temporary server" in _line(lines, "webhook")


async def test_an_expired_token_fails_with_how_to_get_a_new_one(tmp_path: Path, meta: str) -> None:
    code, lines = await _doctor(_config(tmp_path, api_url=meta, token="expired"))
    assert code == 1
    line = _line(lines, "Graph API")
    assert line.startswith("FAIL ")
    assert "invalid or has expired (error 190)" in line
    assert "→" in line and "WHATSAPP_TOKEN" in line.split("→")[1]
    assert sum(line.startswith("ok   ") for line in lines) == 3  # the others still pass


async def test_a_missing_permission_is_named(tmp_path: Path, meta: str) -> None:
    code, lines = await _doctor(_config(tmp_path, api_url=meta, token="no-permission"))
    line = _line(lines, "Graph API")
    assert code == 1
    assert line.startswith("FAIL ") and "lacks a permission (error 200)" in line
    assert "whatsapp_business_messaging" in line.split("→")[1]


async def test_a_wrong_phone_number_id(tmp_path: Path, meta: str) -> None:
    code, lines = await _doctor(_config(tmp_path, api_url=meta, phone="84281234567"))
    line = _line(lines, "Graph API")
    assert code == 1
    assert line.startswith("FAIL ") and "phone number id 84281234567 was not found" in line
    assert "WHATSAPP_PHONE_NUMBER_ID" in line.split("→")[1]


async def test_an_unreachable_graph_api(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    code, lines = await _doctor(_config(tmp_path, api_url=url))
    line = _line(lines, "Graph API")
    assert code == 1
    assert line.startswith("FAIL ") and "cannot be reached" in line and url in line
    assert "internet connection" in line.split("→")[1]


async def test_dry_run_is_a_warning_that_says_what_to_set(tmp_path: Path) -> None:
    code, lines = await _doctor(_config(tmp_path, token=""))
    line = _line(lines, "WhatsApp")
    assert code == 0
    assert line.startswith("warn ") and "dry-run" in line and "WHATSAPP_TOKEN not set" in line
    assert "set WHATSAPP_TOKEN" in line.split("→")[1]


async def test_no_verify_token_fails_the_webhook_check(tmp_path: Path, meta: str) -> None:
    code, lines = await _doctor(_config(tmp_path, api_url=meta, verify=""))
    line = _line(lines, "webhook")
    assert code == 1
    assert line.startswith("FAIL ") and "WHATSAPP_VERIFY_TOKEN is not set" in line


async def test_the_running_server_answers_the_challenge(tmp_path: Path, meta: str) -> None:
    port = _free_port()
    config = _config(tmp_path, api_url=meta, port=port)
    async with TestServer(create_app(_settings(config), _bot()), host="127.0.0.1", port=port):
        code, lines = await _doctor(config)
    assert code == 0, lines
    assert f"the running server at http://127.0.0.1:{port}/webhook/whatsapp answers" in _line(lines, "webhook")


async def test_a_running_server_with_another_verify_token_fails(tmp_path: Path, meta: str) -> None:
    port = _free_port()
    running = _config(tmp_path, api_url=meta, port=port, verify="old")
    server = TestServer(create_app(_settings(running), _bot()), host="127.0.0.1", port=port)
    changed = _config(tmp_path, api_url=meta, port=port, verify="new")
    async with server:
        code, lines = await _doctor(changed)
    line = _line(lines, "webhook")
    assert code == 1
    assert line.startswith("FAIL ") and "refused the verify token" in line and "restart wabot" in line


async def test_a_server_that_never_answers_is_named_with_its_timeout(
    tmp_path: Path, meta: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare TimeoutError has no text: the line still says why (it once ended in an empty reason)."""
    port = _free_port()
    held: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda _, writer: held.append(writer), "127.0.0.1", port)  # never answers
    monkeypatch.setattr(doctor, "LOCAL_TIMEOUT", 0.2)
    async with silent:
        code, lines = await _doctor(_config(tmp_path, api_url=meta, port=port))
        for writer in held:
            writer.close()
            await writer.wait_closed()
    line = _line(lines, "webhook")
    assert code == 1
    assert line.startswith("FAIL ") and line.endswith("did not answer the verification request: TimeoutError"
                                                       "  → check the log of the running wabot, or stop whatever "
                                                       "else listens on that port"), line


async def test_broken_flows_and_an_unusable_database_fail(tmp_path: Path, meta: str) -> None:
    config = _config(tmp_path, api_url=meta, flows=FIXTURES / "broken.yaml")
    config.write_text(config.read_text().replace(str(tmp_path / "wabot.db"), str(tmp_path / "no" / "such" / "x.db")))
    code, lines = await _doctor(config)
    assert code == 1
    assert _line(lines, "flows").startswith("FAIL ") and "wabot validate" in _line(lines, "flows")
    assert _line(lines, "database").startswith("FAIL ") and "writable" in _line(lines, "database")


def test_main_prints_a_line_per_check_and_exits_2_on_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, token="")
    assert doctor.main(config) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line[:5] for line in lines] == ["ok   ", "ok   ", "ok   ", "warn ", "ok   "]
    config.write_text(config.read_text().replace("verify_token: 'v3rify'", "verify_token: ''"), encoding="utf-8")
    assert doctor.main(config) == 0  # the out-of-the-box demo: dry-run, no verify token, only warnings
    lines = capsys.readouterr().out.splitlines()
    assert [line[:5] for line in lines] == ["ok   ", "ok   ", "ok   ", "warn ", "warn "]
    config.write_text("server: {port: lots}\n", encoding="utf-8")
    assert doctor.main(config) == 2
    out = capsys.readouterr().out
    assert out.startswith("FAIL settings:") and "server.port" in out


def _bot() -> Bot:
    return demo_bot()


async def test_something_else_on_the_port_is_not_taken_for_wabot(tmp_path: Path, meta: str) -> None:
    port = _free_port()

    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=request.query.get("hub.challenge", "ok"))  # answers the challenge, yet is not wabot

    other = web.Application()
    other.router.add_get("/{tail:.*}", answer)
    async with TestServer(other, host="127.0.0.1", port=port):
        code, lines = await _doctor(_config(tmp_path, api_url=meta, port=port))
    line = _line(lines, "webhook")
    assert code == 1 and line.startswith("FAIL ") and f"something listens on port {port}, but it is not wabot" in line


async def test_a_wabot_serving_another_database_is_named(tmp_path: Path, meta: str) -> None:
    port = _free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    running = _config(tmp_path / "a", api_url=meta, port=port)
    async with TestServer(create_app(_settings(running), _bot()), host="127.0.0.1", port=port):
        code, lines = await _doctor(_config(tmp_path / "b", api_url=meta, port=port))
    line = _line(lines, "webhook")
    assert code == 1 and line.startswith("FAIL ")
    assert f"does not serve the database {tmp_path / 'b' / 'wabot.db'}" in line and "no running wabot" in line


async def test_flows_that_hand_off_with_no_desk_are_warned_about(tmp_path: Path) -> None:
    _, lines = await _doctor(_config(tmp_path, desk=False))
    line = _line(lines, "flows")
    assert line.startswith("warn ") and "the handoff desk is off" in line and "WABOT_ADMIN_TOKEN" in line
