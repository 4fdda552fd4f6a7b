"""Through the real server: a reply that outgrew a WhatsApp limit once filled in still reaches the customer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import FIXTURES
from tests.apptools import envelope, post, settle, start, tap, text
from tests.fakegraph import FakeGraph

LAN = "84901234567"
SENTENCE = "Em bị đau răng hàm bên trái khi uống nước lạnh, đã ba ngày rồi ạ."


async def test_a_long_answer_and_an_empty_slot_are_sent_within_the_limits(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    client = await start(aiohttp_client, tmp_path, fake, flows=FIXTURES / "clinic")
    note = " ".join([SENTENCE] * 17)
    assert len(note) > 1024
    await post(client, envelope(text(LAN, "chào")))
    await fake.wait_sent(1)
    await post(client, envelope(text(LAN, note)))
    sent = await fake.wait_sent(3)
    assert sent[1]["type"] == "text" and sent[1]["text"]["body"].startswith("Bạn xác nhận triệu chứng: Em bị")
    buttons = sent[2]["interactive"]
    assert buttons["body"]["text"] == SENTENCE
    assert [b["reply"]["title"] for b in buttons["action"]["buttons"]] == ["Đúng rồi", "Sửa lại"]
    await post(client, envelope(tap(LAN, buttons["action"]["buttons"][0]["reply"]["id"], "Đúng rồi")))
    slots = (await fake.wait_sent(4))[3]["interactive"]["action"]["buttons"]
    assert [b["reply"]["title"] for b in slots] == ["8:00", "9:30"]  # the third slot was empty: left out
    await post(client, envelope(tap(LAN, slots[1]["reply"]["id"], "9:30")))
    await fake.wait_sent(5)
    await settle(client)
    assert fake.texts(LAN)[-1].startswith("Đã đặt 9:30. Ghi chú của bạn: Em bị")
    assert fake.violations == []
