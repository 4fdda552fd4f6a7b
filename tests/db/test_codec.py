from wabot.db import codec
from wabot.whatsapp import inbound, outbound


def test_every_content_kind_round_trips() -> None:
    contents: list[inbound.Content] = [
        inbound.Text("Đặt hàng 👍"),
        inbound.Reply("list_reply", "ship.express", "Giao nhanh", "Trong 2 giờ"),
        inbound.FlowReply("flow", "Sent", {"flow_token": "t", "rating": "5"}),
        inbound.Media("document", "123", "application/pdf", caption="Hợp đồng", filename="hd.pdf"),
        inbound.Location(10.7769, 106.7009, "Nhà hát", "7 Lam Sơn"),
        inbound.SharedContacts(({"name": {"formatted_name": "Bình"}},)),
        inbound.Reaction("wamid.x", ""),
        inbound.Order("cat", "", (inbound.OrderItem("PHO", 2, 65000, "VND"),)),
        inbound.System("user_changed_number", "changed", "84987654321"),
        inbound.Unsupported("poll_creation", (inbound.ErrorInfo(131051, "Message type unknown"),)),
    ]
    for content in contents:
        m = inbound.Message(
            id="wamid.1",
            customer=inbound.Customer(None, user_id="US.1349", username="an"),
            phone_number_id="1",
            timestamp=1764000000,
            type="x",
            content=content,
            context=inbound.Context(message_id="wamid.0", forwarded=True),
            referral=inbound.Referral(source_type="ad", ctwa_clid="c"),
        )
        assert codec.load_message(codec.dump_message(m)) == m


def test_the_stored_text_is_the_one_earlier_versions_wrote() -> None:
    """Inbox rows written before the encoder changed (issue 14 item 5) and after it read the same."""
    m = inbound.Message(id="wamid.1", customer=inbound.Customer("84910000001", name="An"),
                        phone_number_id="106540352242922", timestamp=1764000000, type="text",
                        content=inbound.Text("xin chào"))
    assert codec.dump_message(m) == (
        '{"id":"wamid.1","customer":{"wa_id":"84910000001","user_id":null,"name":"An","username":null,'
        '"_t":"Customer"},"phone_number_id":"106540352242922","timestamp":1764000000,"type":"text",'
        '"content":{"body":"xin chào","_t":"Text"},"context":null,"referral":null,"_t":"Message"}'
    )


def test_a_flow_start_survives_the_inbox_with_its_opening_template() -> None:
    started = codec.Started(inbound.Customer("84912345678", name="Lan"), "order_shipped", {"code": "A1", "n": 2},
                            outbound.Template("order_update", "vi", ({"type": "body", "parameters": []},)))
    assert codec.load_pending(codec.dump_started(started)) == started
    bare = codec.Started(inbound.Customer("84912345678"), "order_shipped", {})
    assert codec.load_pending(codec.dump_started(bare)) == bare
