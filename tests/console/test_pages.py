"""Customers (search, export), flows (problems, diagrams), the simulator and the numbers page."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tests.apptools import envelope, post, settle, tap, text
from tests.console.kit import browser, change, console_app, db, one, origin, sign_in
from tests.fakegraph import FakeGraph
from wabot.db import reports

LAN, MAI = "84912345678", "84987654321"


async def test_search_by_name_any_number_form_or_saved_variable(aiohttp_client: Any, tmp_path: Path,
                                                                fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    await post(client, envelope(text(LAN, "hi", name="Lan Nguyễn"), text(MAI, "hi", name="Mai")))
    await settle(client)
    store = db(client)
    state = await store.load_state(LAN)
    assert state is not None
    await change(client, "UPDATE conversations SET state = $1 WHERE customer = $2",
                 state.with_(vars={"order_code": "DH042"}).to_json(), LAN)
    async with browser(client) as session:
        await sign_in(client, session)
        for query, who in [("0912345678", LAN), ("+84 912 345 678", LAN), ("84987654321", MAI),
                           ("Nguyễn", LAN), ("nguyen", LAN), ("NGUYEN", LAN), ("lan nguyên", LAN), ("mai", MAI),
                           ("DH042", LAN), ("dh042", LAN)]:
            page = await (await session.get("/console/customers", params={"q": query})).text()
            rows = page.count('data-testid="customer-row"')
            assert rows == 1 and f"/console/c/{who}" in page, (query, rows)
        for nobody in ("100%_", "wa_id", "*", "[", "Ngu*n", "user"):  # neither wildcards nor the JSON's own keys
            page = await (await session.get("/console/customers", params={"q": nobody})).text()
            assert 'data-testid="customer-row"' not in page, nobody
        page = await (await session.get("/console/customers", params={"q": "100%_"})).text()
        assert 'data-testid="customer-row"' not in page and "Không tìm thấy" in page
        page = await (await session.get("/console/customers")).text()
        assert page.count('data-testid="customer-row"') == 2
    assert reports.number_forms("0912 345 678") == "84912345678"
    assert reports.number_forms("Lan") is None


async def test_export_is_for_admins_as_json_lines_or_csv(aiohttp_client: Any, tmp_path: Path,
                                                        fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, users=("lan", "admin.hoa"), db=db_target)
    await post(client, envelope(text(LAN, "hi", name="Lan")))
    await settle(client)
    async with browser(client) as session:
        await sign_in(client, session)
        assert (await session.get("/console/export.jsonl")).status == 403
    async with browser(client) as session:
        await sign_in(client, session, "admin.hoa")
        resp = await session.get("/console/export.jsonl", params={"q": "0912345678"})
        assert resp.headers["Content-Disposition"].startswith('attachment; filename="wabot-export.jsonl')
        lines = [json.loads(line) for line in (await resp.text()).splitlines()]
        assert [(m["direction"], m["customer"]) for m in lines][:2] == [("in", LAN), ("out", LAN)]
        assert lines[0]["text"] == "hi" and lines[1]["text"].startswith("Xin chào Lan")
        exported = await (await session.get("/console/export.csv")).text()
        table = list(csv.DictReader(io.StringIO(exported.lstrip("\ufeff"))))
        assert len(table) == len(lines) and table[0]["customer"] == LAN


async def test_flows_page_lists_problems_and_ships_its_diagram_script(aiohttp_client: Any, tmp_path: Path,
                                                                     fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    async with browser(client) as session:
        await sign_in(client, session)
        page = await (await session.get("/console/flows")).text()
        assert page.count('data-testid="diagram"') >= 3 and "flowchart" in page
        # the same problems as `wabot validate` (the test config has no bot.env)
        assert "reads env.SHOP_API, but SHOP_API is not in bot.env" in page
        script = await session.get("/console/static/mermaid.min.js")
        assert script.status == 200 and len(await script.read()) > 1_000_000
        assert (await session.get("/console/static/../pages.py")).status in (403, 404)


async def test_the_simulator_walks_the_main_menu_on_a_throw_away_conversation(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    async with browser(client) as session:
        csrf = await sign_in(client, session)
        headers = {**origin(client), "X-CSRF-Token": csrf}
        said = {"text": "xin chào"}
        first = await (await session.post("/console/simulator.json", json=said, headers=headers)).json()
        menu = first["messages"][-1]
        assert menu["kind"] == "list" and first["state"]["step"] == "menu"
        row = next(r for s in menu["sections"] for r in s["rows"] if r["title"] == "Cửa hàng ở đâu?")
        second = await (await session.post("/console/simulator.json", json={"tap": {
            "id": row["id"], "title": row["title"], "kind": "list_reply"}}, headers=headers)).json()
        assert second["messages"][0] == {"kind": "text", "text": "📍 Trà Sen 10.7769,106.7009"}
        assert second["messages"][1]["kind"] == "cta" and second["messages"][-1]["kind"] == "list"
        resp = await session.post("/console/simulator.json", json={"text": "hi"}, headers=origin(client))
        assert resp.status == 403  # the CSRF token travels in a header for scripts
        resp = await session.post("/console/simulator.json", data=b"[", headers={**headers,
                                                                               "Content-Type": "application/json"})
        assert resp.status == 400
        gone = await (await session.post("/console/simulator.json", json={"restart": True}, headers=headers)).json()
        assert gone["state"]["status"] == "idle"
    assert fake.sent == []  # the simulator never writes to WhatsApp
    assert await one(client, "SELECT COUNT(*) FROM conversations") == 0


async def test_numbers_show_the_funnel_and_the_texts_the_bot_did_not_understand(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client = await console_app(aiohttp_client, tmp_path, fake, db=db_target)
    await post(client, envelope(text(LAN, "hi"), text(MAI, "hi")))
    await settle(client)
    await post(client, envelope(text(LAN, "con mèo"), text(MAI, "Con mèo")))
    await post(client, envelope(tap(LAN, "x", "??")))
    await settle(client)
    async with browser(client) as session:
        await sign_in(client, session)
        page = await (await session.get("/console/numbers")).text()
        assert 'data-testid="funnel"' in page and "<td>menu</td>" in page
        missed = page.split('data-testid="not-understood"')[1].split("</table>")[0]
        assert "con mèo" in missed.lower() and "<td>2</td>" in missed
        assert "Đang trò chuyện" in page
