"""Outgoing messages: Graph bodies valid against Meta's schema, and WhatsApp's limits in plain words."""

from __future__ import annotations

import unicodedata

import pytest

from tests.fakegraph import MARK_READ, MESSAGE
from wabot.errors import LimitError
from wabot.whatsapp import outbound as o

TO = o.Recipient("84912345678")

EVERY_KIND: list[o.Outgoing] = [
    o.Text("Chào bạn! https://trasen.vn", preview_url=True),
    o.Buttons("Bạn muốn gì?", (o.Button("a", "Đặt hàng"), o.Button("b", "Gặp nhân viên")),
              header="Trà Sen", footer="8-22h"),
    o.ListMessage("Chọn món", "Xem món", (
        o.Section("Trà", (o.Row("t1", "Trà sen", "65.000 ₫"), o.Row("t2", "Trà lài"))),
        o.Section("Bánh", (o.Row("b1", "Bánh pía"),)),
    ), header="Thực đơn", footer="Giá gồm VAT"),
    o.CtaUrl("Xem lịch trống", "Đặt bàn", "https://example.com/dat-ban"),
    o.Media("image", link="https://example.com/a.jpg", caption="Thực đơn"),
    o.Media("document", id="1234567890", caption="Hóa đơn", filename="hoa-don.pdf"),
    o.Media("audio", id="1"), o.Media("video", link="https://example.com/a.mp4"), o.Media("sticker", id="2"),
    o.Location(10.7769, 106.7009, "Trà Sen", "7 Lam Sơn, Quận 1"),
    o.Contacts(({"name": {"formatted_name": "Trà Sen", "first_name": "Sen"},
                 "phones": [{"phone": "+84 28 1234 5678", "type": "WORK"}]},)),
    o.Template("order_update", "vi", ({"type": "body", "parameters": [{"type": "text", "text": "An"}]},)),
    o.Reaction("wamid.HBgLODQ5", "👍"),
]


@pytest.mark.parametrize("message", EVERY_KIND, ids=lambda m: type(m).__name__)
def test_every_kind_gives_a_body_meta_accepts(message: o.Outgoing) -> None:
    o.check_limits(message)
    body = o.to_body(TO, message)
    assert [e.message for e in MESSAGE.iter_errors(body)] == []
    assert body["to"] == "+84912345678" and body["recipient_type"] == "individual"


def test_buttons_and_list_bodies_in_detail() -> None:
    buttons = o.to_body(TO, EVERY_KIND[1])["interactive"]
    assert buttons["action"]["buttons"][1] == {"type": "reply", "reply": {"id": "b", "title": "Gặp nhân viên"}}
    assert buttons["header"] == {"type": "text", "text": "Trà Sen"} and buttons["footer"] == {"text": "8-22h"}
    lst = o.to_body(TO, EVERY_KIND[2])["interactive"]
    assert lst["action"]["button"] == "Xem món"
    assert lst["action"]["sections"][0]["rows"][1] == {"id": "t2", "title": "Trà lài"}


def test_text_is_sent_in_nfc_and_a_bsuid_customer_is_addressed_by_recipient() -> None:
    decomposed = unicodedata.normalize("NFD", "Đặt hàng")
    body = o.to_body(o.Recipient(None, "VN.123"), o.Text(decomposed))
    assert body["text"]["body"] == unicodedata.normalize("NFC", "Đặt hàng") != decomposed
    assert body["recipient"] == "VN.123" and "to" not in body
    assert [e.message for e in MESSAGE.iter_errors(body)] == []


def test_a_message_without_recipient_is_refused_by_us_and_by_the_schema() -> None:
    with pytest.raises(LimitError, match="needs a recipient"):
        o.to_body(o.Recipient(None), o.Text("x"))
    body = o.to_body(TO, o.Text("x"))
    del body["to"]
    assert list(MESSAGE.iter_errors(body))


def test_the_schema_catches_what_check_limits_would_have_caught() -> None:
    """The FakeGraph check is worth having only if Meta's schema refuses broken bodies on its own."""
    four = o.Buttons("x", tuple(o.Button(str(i), "t") for i in range(4)))
    long_title = o.Buttons("x", (o.Button("1", "t" * 21),))
    for message in (four, long_title):
        assert list(MESSAGE.iter_errors(o.to_body(TO, message)))


def test_decomposed_vietnamese_is_counted_as_sent() -> None:
    title = "Đặt hàng nhanh ở đây"  # 20 characters in NFC, 26 code points in NFD
    o.check_limits(btn(unicodedata.normalize("NFD", title)))
    with pytest.raises(LimitError, match="21 characters"):
        o.check_limits(btn(unicodedata.normalize("NFD", title + "!")))
    with pytest.raises(LimitError, match="repeated"):
        o.check_limits(btn(title, unicodedata.normalize("NFD", title)))


def test_mark_read_with_typing_indicator() -> None:
    body = o.mark_read_body(o.MarkRead("wamid.1", typing=True))
    assert body == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.1",
                    "typing_indicator": {"type": "text"}}
    assert list(MARK_READ.iter_errors(body)) == []


def btn(*titles: str) -> o.Buttons:
    return o.Buttons("Chọn", tuple(o.Button(f"id{i}", t) for i, t in enumerate(titles)))


@pytest.mark.parametrize(("message", "field", "words"), [
    (o.Text("x" * 4097), "text.body", "4097 characters; WhatsApp allows at most 4096"),
    (o.Text("  "), "text.body", "empty"),
    (btn("A", "B", "C", "D"), "buttons", "1 to 3 reply buttons, not 4"),
    (btn("Một tiêu đề quá dài cho nút"), "button.title", "at most 20"),
    (btn("A", "A"), "button.title", "repeated: A"),
    (o.Buttons("x" * 1025, (o.Button("a", "A"),)), "body.text", "at most 1024"),
    (o.Buttons("x", (o.Button("a", "A"),), header="h" * 61), "header.text", "at most 60"),
    (o.ListMessage("x", "Một nút quá dài cho list", (o.Section(None, (o.Row("1", "A"),)),)), "list.button",
     "at most 20"),
    (o.ListMessage("x", "Xem", (o.Section(None, tuple(o.Row(str(i), str(i)) for i in range(11))),)), "list.rows",
     "1 to 10 rows"),
    (o.ListMessage("x", "Xem", (o.Section(None, (o.Row("1", "A", "d" * 73),)),)), "row.description", "at most 72"),
    (o.ListMessage("x", "Xem", (o.Section(None, (o.Row("1", "A"),)), o.Section("B", (o.Row("2", "B"),)))),
     "section.title", "needs a title"),
    (o.CtaUrl("x", "Xem", "ftp://x"), "cta.url", "https://"),
    (o.Media("image", link="https://x/a.jpg", id="1"), "media", "exactly one"),
    (o.Media("audio", id="1", caption="x"), "media.caption", "no caption"),
    (o.Location(91, 0), "location", "not a place"),
    (o.Contacts(({"phones": []},)), "contacts.name", "formatted_name"),
    (o.Buttons("x", (o.Button(" a", "A"),)), "button.id", "must not start or end with a space"),
    (o.ListMessage("x", " ", (o.Section(None, (o.Row("1", "A"),)),)), "list.button", "empty"),
    (o.ListMessage("x", "Xem", tuple(o.Section(str(i), (o.Row(str(i), "A"),)) for i in range(11))), "list.rows",
     "in 1 to 10 sections"),
    (o.ListMessage("x", "Xem", (o.Section("s" * 25, (o.Row("1", "A"),)),)), "section.title", "at most 24"),
    (o.ListMessage("x", "Xem", (o.Section(None, (o.Row("1", "r" * 25),)),)), "row.title", "at most 24"),
    (o.ListMessage("x", "Xem", (o.Section("a", (o.Row("1", "A"),)), o.Section("b", (o.Row("1", "B"),)))), "row.id",
     "repeated: 1"),
    (o.Buttons("x", (o.Button("a", "A"),), footer="f" * 61), "footer.text", "at most 60"),
    (o.CtaUrl("x", "Mở trang đặt bàn ngay", "https://x"), "cta.display_text", "at most 20"),
    (o.CtaUrl("x", "", "https://x"), "cta.display_text", "empty"),
    (o.Media("image", id="1", caption="c" * 1025), "media.caption", "at most 1024"),
    (o.Media("image", link="file:///etc/passwd"), "media.link", "https://"),
    (o.Media("gif", id="1"), "media.kind", "not a media kind"),  # type: ignore[arg-type]  # checked at run time too
    (o.Template("", "vi"), "template", "name and language"),
    (o.Reaction("", "👍"), "reaction.message_id", "id of the message"),
])
def test_limits_are_named_in_plain_words(message: o.Outgoing, field: str, words: str) -> None:
    with pytest.raises(LimitError) as caught:
        o.check_limits(message)
    assert caught.value.field == field
    assert words in str(caught.value)
