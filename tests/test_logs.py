"""Log set-up: JSON lines for collectors, and customers' numbers masked unless the operator says otherwise."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from wabot import logs
from wabot.config import load_settings, secret_values


@pytest.fixture(autouse=True)
def restore() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    logs.setup()  # masking back on
    root.handlers[:] = handlers
    root.setLevel(level)


def test_numbers_are_masked_by_default_and_can_be_shown() -> None:
    logs.setup("INFO", "text")
    assert logs.mask("84912345678") == "8491****678"
    assert logs.mask("12345") == "*****"
    logs.setup("INFO", "text", mask_numbers=False)
    assert logs.mask("84912345678") == "84912345678"


def test_json_format_is_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup("INFO", "json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("wabot.test").exception("khách %s gửi tin", logs.mask("84912345678"))
    [line] = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "wabot.test"
    assert entry["message"] == "khách 8491****678 gửi tin" and "ValueError: boom" in entry["traceback"]


def test_secret_values_never_reach_a_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 16 item 4: a flow allowed to read SHOP_TOKEN put it in a reply, and the INFO line showed it."""
    logs.setup("INFO", "text", secrets=["shop-token-123456", "abc"])  # too short to hide safely: kept
    logging.getLogger("wabot.test").info("sent reply 7: %r", "Mã của bạn: shop-token-123456 (abc)")
    [line] = capsys.readouterr().err.splitlines()
    assert "shop-token-123456" not in line and "Mã của bạn: *** (abc)" in line


def test_the_secret_values_are_wabots_own_and_the_allowed_variables_named_as_secrets(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("whatsapp: {token: tok-123456, phone_number_id: '1', app_secret: sec-123456}\n"
                      "bot: {env: [SHOP_API, SHOP_TOKEN, STRIPE_API_KEY]}\n", encoding="utf-8")
    environ = {"SHOP_API": "http://shop", "SHOP_TOKEN": "shop-token-1", "STRIPE_API_KEY": "sk_live_1",
               "OTHER_PASSWORD": "not-allowed-so-never-read"}
    found = secret_values(load_settings(config, environ), environ)
    assert set(found) == {"tok-123456", "sec-123456", "shop-token-1", "sk_live_1"}


class Counting:
    """A stream that keeps each write apart (one write is one system call on a real file)."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass


def test_the_lines_of_one_loop_pass_go_out_in_one_write_at_its_end() -> None:
    stream = Counting()
    handler = logs.PassWriter(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("wabot.test.pass")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        async def one_pass() -> list[str]:
            log.warning("first")
            log.warning("second")
            seen = list(stream.writes)  # nothing yet: the pass has not ended
            await asyncio.sleep(0)
            return seen

        assert asyncio.run(one_pass()) == []
        assert stream.writes == ["WARNING first\nWARNING second\n"]

        async def an_error() -> None:
            log.info("before")
            log.error("broken")  # at once, after what waited

        asyncio.run(an_error())
        assert stream.writes[1:] == ["INFO before\nERROR broken\n"]
        log.warning("no loop")  # the command-line tools, another thread: at once
        assert stream.writes[2:] == ["WARNING no loop\n"]
    finally:
        log.removeHandler(handler)
        log.propagate = True
