"""Stored messages as the console shows them: media by kind and caption, links, unreadable rows named."""

from __future__ import annotations

import json

from wabot.console import talk
from wabot.db import codec
from wabot.whatsapp import inbound


def test_media_both_ways_and_a_row_this_version_cannot_read() -> None:
    photo = inbound.Message("wamid.1", inbound.Customer("849"), "p", 1, "image",
                            inbound.Media("image", "media-1", "image/jpeg", caption="áo size M"))
    sent = {"messaging_product": "whatsapp", "to": "849", "type": "image",
            "image": {"link": "https://shop.example/a.jpg", "caption": "Mẫu mới"}}
    rows = [
        (1.0, "in", codec.dump_message(photo), "done", None, None, 1),
        (2.0, "out", json.dumps(sent), "failed", "131026: undeliverable", "lan", 1),
        (3.0, "in", "{not json", "done", None, None, 2),
    ]
    first, second, third = talk.entries(rows)
    assert (first.text, first.kind) == ("[image] áo size M", "image")
    assert (second.text, second.link, second.agent, second.error) == (
        "[image] Mẫu mới", "https://shop.example/a.jpg", "lan", "131026: undeliverable")
    assert third.text == "[a message this version cannot read]"
