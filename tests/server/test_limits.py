"""Issue 16 item 6: a conversation's state has a size limit, and a turn that cannot be stored is skipped once."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.apptools import envelope, post, rows, settle, start, text
from tests.fakegraph import FakeGraph
from wabot.server.keys import STORE
from wabot.server.limits import fit_state
from wabot.state import WAITING, State


def test_a_state_past_the_limit_drops_its_largest_variables_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    state = State(flow="track", step="show", status=WAITING, vars={"order": "x" * 5000, "code": "DH1", "n": 3})
    kept, text = fit_state(state, 10_000, customer="84912345678")
    assert kept is state and text == state.to_json()
    with caplog.at_level(logging.WARNING):
        fitted, text = fit_state(state, 2048, customer="84912345678")
    assert "order" not in fitted.vars and fitted.vars["code"] == "DH1" and fitted.vars["n"] == 3
    assert "too large to keep (5002 bytes" in fitted.vars["order_error"]
    assert text == fitted.to_json() and len(text.encode()) <= 2048
    assert "track" in caplog.text and "8491****678" in caplog.text and "order" in caplog.text


async def test_a_turn_the_database_cannot_store_is_skipped_once_not_replayed(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    """"string or blob too big" was replayed, and failed again, at every restart."""
    client = await start(aiohttp_client, tmp_path, fake)
    store = client.app[STORE]
    real = store.finish_turn

    async def too_big(**kw: Any) -> Any:
        monkeypatch.setattr(store, "finish_turn", real)  # only the first turn
        raise sqlite3.DataError("string or blob too big")

    monkeypatch.setattr(store, "finish_turn", too_big)
    with caplog.at_level(logging.ERROR):
        assert await post(client, envelope(text("84912345678", "hi"))) == 200
        await settle(client)
    assert await rows(client, "SELECT COUNT(*) FROM inbox WHERE done = 0") == [(0,)]
    assert caplog.text.count("the message is skipped") == 1
    assert await post(client, envelope(text("84912345678", "hi"))) == 200  # the customer is answered again
    await fake.wait_sent(1)
