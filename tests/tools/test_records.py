"""Honest records: dry-run replies recorded as dry-run, `wabot history` for any form of a number, times with zones."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import DEMO, ROOT
from tests.apptools import envelope, post, settle, text
from wabot.config import load_settings
from wabot.db.history import number_pattern
from wabot.flows.load import load_bot_or_raise
from wabot.server.app import create_app
from wabot.server.metrics import METRICS
from wabot.tools import desk

LAN = "84912345678"


def dry_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"database: {{path: '{tmp_path / 'wabot.db'}'}}\nbot: {{flows: '{DEMO}'}}\n"
                    "outbox: {rate_per_second: 1000}\nadmin: {port: 0}\n", encoding="utf-8")  # never the default 8081
    return path


async def test_dry_run_replies_are_recorded_as_dry_run_everywhere(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = load_settings(dry_config(tmp_path), {})
    assert settings.whatsapp.dry_run
    b = settings.bot
    bot = load_bot_or_raise([b.flows], start=b.start_flow, default_language=b.default_language,
                            session_timeout=b.session_timeout, timezone=b.timezone, env={})
    client = await aiohttp_client(create_app(settings, bot))
    assert await post(client, envelope(text(LAN, "hi")), secret=None) == 200
    await settle(client)
    metrics = client.app[METRICS].exposition().decode()
    assert "wabot_replies_sent_total 0.0" in metrics
    assert "wabot_replies_dry_run_total" in metrics and "wabot_replies_dry_run_total 0.0" not in metrics
    out = io.StringIO()
    assert await asyncio.to_thread(desk.history, settings, LAN, out=out) == 0
    replies = [line for line in out.getvalue().splitlines() if "  bot  " in line]
    assert replies and all(line.endswith("[dry-run]") for line in replies), out.getvalue()
    export = tmp_path / "all.jsonl"
    assert await asyncio.to_thread(desk.export, settings, export) == 0
    statuses = {json.loads(line).get("status") for line in export.read_text("utf-8").splitlines()
                if json.loads(line)["direction"] == "out"}
    assert statuses == {"dry-run"}


@pytest.mark.parametrize(("text", "pattern"), [
    ("84912345678", "84912345678"), ("+84 912 345 678", "84912345678"), ("+84-912-345-678", "84912345678"),
    ("0084912345678", "84912345678"), ("0912345678", "*912345678"), ("091 234 5678", "*912345678"),
    ("8491****678", "8491????678"), ("Lan", None), ("****", None), ("12", None),
])
def test_number_forms(text: str, pattern: str | None) -> None:
    assert number_pattern(text) == pattern


async def test_history_finds_a_customer_by_any_form_of_the_number(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = load_settings(dry_config(tmp_path), {})
    b = settings.bot
    bot = load_bot_or_raise([b.flows], start=b.start_flow, default_language=b.default_language,
                            session_timeout=b.session_timeout, timezone=b.timezone, env={})
    client = await aiohttp_client(create_app(settings, bot))
    for number in (LAN, "84912999678", "84987654321"):
        await post(client, envelope(text(number, "hi")), secret=None)
    await settle(client)

    def history(number: str) -> tuple[int, str, str]:
        out = io.StringIO()
        err = io.StringIO()
        real, sys.stderr = sys.stderr, err
        try:
            code = desk.history(settings, number, out=out)
        finally:
            sys.stderr = real
        return code, out.getvalue(), err.getvalue()

    for form in ("+84 912 345 678", "0912345678", "84912345678"):
        code, out, _ = await asyncio.to_thread(history, form)
        assert code == 0 and "customer  hi" in out, (form, out)
        assert out.splitlines()[0][19:26] == ".000+07" or "+07:00" in out.splitlines()[0]  # the zone is shown
    code, _, err = await asyncio.to_thread(history, "8491****678")  # the log's mask fits two customers here
    assert code == 1 and "matches several customers: 84912345678, 84912999678" in err
    code, out, _ = await asyncio.to_thread(history, "8498****321")
    assert code == 0 and "customer  hi" in out
    code, _, err = await asyncio.to_thread(history, "Lan")
    assert code == 2 and "is not a phone number" in err
    code, out, _ = await asyncio.to_thread(history, "0999999999")
    assert code == 1 and "No messages with 0999999999" in out


@pytest.mark.parametrize("command", [["chat", str(ROOT / "flows"), "--echo"], ["test"]])
def test_chat_and_test_are_quiet_on_a_closed_pipe(command: list[str]) -> None:
    """`wabot chat | head -1`: the reader stops early; no BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "wabot", *command], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(b"hi\n" * 2000)  # fits in the pipe's buffer: written before anything is read
    proc.stdin.close()
    proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    proc.wait(timeout=60)
    err = proc.stderr.read()
    proc.stderr.close()
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    assert proc.returncode == 0
