"""Log set-up: JSON lines for collectors, and customers' numbers masked unless the operator says otherwise."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from wabot import logs


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
