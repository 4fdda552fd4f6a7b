"""Log set-up: JSON lines for collectors, and customers' numbers masked unless the operator says otherwise."""

from __future__ import annotations

import json
import logging
import sys
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


def test_a_text_line_is_what_the_logging_module_would_write(capsys: pytest.CaptureFixture[str]) -> None:
    """TextFormatter writes its lines itself (cheaper at two lines a message): the same text, tracebacks included."""
    logs.setup("INFO", "text")
    reference = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    reference.formatTime = logs.TextFormatter().formatTime  # type: ignore[method-assign]
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("wabot.test").exception("khách %s gửi tin", "8491****678")
    written = capsys.readouterr().err
    assert "khách 8491****678 gửi tin\nTraceback (most recent call last):" in written
    assert written.endswith("ValueError: boom\n")
    record = logging.LogRecord("wabot.test", logging.INFO, "", 0, "sent %d", (7,), None)
    assert logs.TextFormatter().format(record) == reference.format(record)
    try:
        raise KeyError("k")
    except KeyError:
        failed = logging.LogRecord("wabot.test", logging.ERROR, "", 0, "ends\n", (), sys.exc_info(), sinfo="st")
    mine = logs.TextFormatter().format(failed)
    failed.exc_text = None
    assert mine == reference.format(failed)
