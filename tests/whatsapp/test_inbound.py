"""parse_webhook on Meta's, pywa's and our sample payloads, on broken items, and on fuzzed bodies."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import PAYLOADS
from wabot.db.codec import dump_message
from wabot.errors import PayloadError
from wabot.whatsapp import inbound
from wabot.whatsapp.parse import parse_webhook


def samples() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for f in sorted((PAYLOADS / "webhooks").glob("*.json")):
        found.append((f.stem, json.loads(f.read_text(encoding="utf-8"))))
    meta = json.loads((PAYLOADS / "meta-openapi-webhook-examples.json").read_text(encoding="utf-8"))
    found += [(f"meta: {name}", body) for name, body in meta.items()]
    for f in sorted((PAYLOADS / "pywa").glob("*.json")):
        for name, body in json.loads(f.read_text(encoding="utf-8")).items():
            found.append((f"pywa {f.stem}: {name}", body))
    return found


SAMPLES = samples()


def load(name: str) -> Any:
    return next(body for n, body in SAMPLES if n.startswith(name))


def only(name: str) -> inbound.Message:
    [message] = parse_webhook(load(name)).messages
    return message


@pytest.mark.parametrize(("name", "body"), SAMPLES, ids=[n for n, _ in SAMPLES])
def test_every_sample_parses_without_rejections(name: str, body: Any) -> None:
    batch = parse_webhook(body)
    assert batch.rejected == ()
    for m in batch.messages:
        assert m.id and m.customer.key and m.type


def test_text_with_customer_name_and_phone_number_id() -> None:
    m = only("E1-")
    assert m.content == inbound.Text("Xin chào, tôi muốn đặt bàn")
    assert m.customer == inbound.Customer("84912345678", name="Nguyễn Văn An")
    assert m.phone_number_id == "106540352242922"
    assert m.timestamp == 1764000000 and m.text == "Xin chào, tôi muốn đặt bàn"


def test_context_reply_and_forwarded() -> None:
    a, b = parse_webhook(load("E2-")).messages
    assert a.context == inbound.Context(
        message_id="wamid.HBgLODQ5MTIzNDU2NzgVAgARGBI5QTAwMDAwMDAwMDAwMDAwMDAA", from_="84281234567"
    )
    assert b.context is not None and b.context.forwarded and not b.context.frequently_forwarded


def test_taps_button_list_and_template_quick_reply() -> None:
    assert only("E3-").content == inbound.Reply("button_reply", "menu.order", "Đặt hàng")
    assert only("E4-").content == inbound.Reply("list_reply", "ship.express", "Giao nhanh", "Trong 2 giờ")
    assert only("E6-").content == inbound.Reply("quick_reply", "STOP_PROMO", "Ngừng nhận tin")
    assert only("E3-").text == "Đặt hàng"


def test_flow_completion_parses_response_json() -> None:
    assert only("E5-").content == inbound.FlowReply("flow", "Sent", {"flow_token": "tok-123", "rating": "5"})


def test_media_kinds() -> None:
    image = only("E7-").content
    assert isinstance(image, inbound.Media) and image.kind == "image" and image.caption == "Hóa đơn"
    assert image.mime_type == "image/jpeg" and image.url and image.id == "1003383421387256"
    doc, voice, sticker = (m.content for m in parse_webhook(load("E8-")).messages)
    assert isinstance(doc, inbound.Media) and doc.filename == "hop-dong.pdf"
    assert isinstance(voice, inbound.Media) and voice.kind == "audio" and voice.voice
    assert isinstance(sticker, inbound.Media) and sticker.kind == "sticker" and not sticker.animated


def test_location_contacts_reaction_order_system_referral_unsupported() -> None:
    assert only("E9-").content == inbound.Location(
        10.7769, 106.7009, "Nhà hát Thành phố", "7 Công Trường Lam Sơn, Quận 1, TP.HCM", "https://maps.google.com/?cid=1"
    )
    shared = only("E10-").content
    assert isinstance(shared, inbound.SharedContacts) and shared.contacts[0]["name"]["first_name"] == "Bình"
    like, unlike = (m.content for m in parse_webhook(load("E11-")).messages)
    assert isinstance(like, inbound.Reaction) and like.emoji == "👍"
    assert isinstance(unlike, inbound.Reaction) and unlike.emoji == ""
    assert only("E12-").content == inbound.Order(
        "194836987003835", "", (inbound.OrderItem("PHO_BO", 2, 65000.0, "VND"),)
    )
    system = only("E13-")
    assert system.content == inbound.System(
        "user_changed_number", "User Nguyễn Văn An changed from 84912345678 to 84987654321", "84987654321"
    )
    assert system.customer.name is None  # system messages carry no contacts
    referral = only("E14-").referral
    assert referral is not None and referral.source_type == "ad" and referral.ctwa_clid == "Aff-n8ZTODiE79d22"
    unsupported = only("E15-").content
    assert isinstance(unsupported, inbound.Unsupported) and unsupported.type == "poll_creation"
    assert unsupported.errors[0].code == 131051


def test_statuses_and_value_errors() -> None:
    sent, read = parse_webhook(load("E16-")).statuses
    assert (sent.status, sent.pricing_category, read.status) == ("sent", "service", "read")
    [failed] = parse_webhook(load("E17-")).statuses
    assert failed.status == "failed" and failed.errors[0].code == 131047 and "24 hours" in failed.errors[0].details
    [error] = parse_webhook(load("E18-")).errors
    assert error.code == 130429


def test_batch_walks_every_entry_change_message_and_status() -> None:
    batch = parse_webhook(load("E19-"))
    assert [m.customer.name for m in batch.messages] == ["Nguyễn Văn An", "Lê Hoa"]
    assert [s.status for s in batch.statuses] == ["delivered"]


def test_other_fields_are_ignored_not_rejected() -> None:
    body = {"object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "account_update", "value": {"event": "VERIFIED"}}]}]}
    assert parse_webhook(body) == inbound.Batch(ignored=("account_update",))


def test_customer_known_only_by_business_scoped_user_id() -> None:
    body = copy.deepcopy(load("E1-"))
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"profile": {"name": "An", "username": "an.sen"}, "user_id": "VN.123"}]
    del value["messages"][0]["from"]
    value["messages"][0]["from_user_id"] = "VN.123"
    m = parse_webhook(body).messages[0]
    assert m.customer == inbound.Customer(None, "VN.123", "An", "an.sen") and m.customer.key == "VN.123"


def test_customer_with_phone_and_business_scoped_user_id() -> None:
    [m] = parse_webhook(load("pywa call_permission_update: accept")).messages
    assert m.customer == inbound.Customer("972987654321", "US.13491208655302741918", "Test Name")
    assert m.customer.key == "972987654321"


def test_hostile_names_give_short_labels_not_errors(caplog: pytest.LogCaptureFixture) -> None:
    deep: Any = "x"
    for _ in range(100_000):  # deeper than repr() can go
        deep = [deep]
    body = copy.deepcopy(load("E3-"))
    changes = body["entry"][0]["changes"]
    changes[0]["value"]["messages"][0]["interactive"]["type"] = deep
    changes += [{"field": "x" * 1_000_000, "value": {}}, {"field": deep}, {"value": {}}]
    batch = parse_webhook(body)
    assert batch.messages[0].content == inbound.Unsupported("interactive.")
    assert batch.ignored == ("x" * 64,)
    assert batch.rejected == (
        "entry[0].changes[2]: 'field' is missing or not a text",
        "entry[0].changes[3]: 'field' is missing or not a text",
    )
    assert max(len(r.getMessage()) for r in caplog.records) < 200


def test_a_broken_message_is_skipped_and_named_the_rest_kept(caplog: pytest.LogCaptureFixture) -> None:
    body = copy.deepcopy(load("E8-"))
    messages = body["entry"][0]["changes"][0]["value"]["messages"]
    del messages[1]["from"]
    messages.insert(0, "junk")
    batch = parse_webhook(body)
    assert [m.type for m in batch.messages] == ["document", "sticker"]
    assert batch.rejected == (
        "entry[0].changes[0].value.messages[0]: not an object",
        "entry[0].changes[0].value.messages[2]: 'from' is missing",
    )
    assert "'from' is missing" in caplog.text


@pytest.mark.parametrize(
    "body", [[], "x", None, {}, {"object": "page", "entry": []}, {"object": "whatsapp_business_account"},
             {"object": "whatsapp_business_account", "entry": {}}],
)
def test_a_broken_envelope_is_a_payload_error(body: Any) -> None:
    with pytest.raises(PayloadError):
        parse_webhook(body)


def nested(depth: int) -> Any:
    deep: Any = "🙂"
    for i in range(depth):
        deep = [deep] if i % 2 else {"a": deep}
    return deep


# Emoji, skin tones, ZWJ sequences, Vietnamese combining marks, a lone surrogate and NUL.
tricky = st.sampled_from(["👍", "👍🏽", "👨‍👩‍👧", "Tiếng Việt", "e\u0301\u0323", "\u0300" * 50, "\ud800", "\x00", ""])
# issue 16 item 7: lone surrogates anywhere, objects nested 490-900 deep, integers past SQLite's 2^63
surrogates = st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3).map(lambda s: f"a{s}b")
huge = st.integers(min_value=2**63 - 1, max_value=2**70).map(lambda n: n * (1 if n % 2 else -1)) | st.sampled_from(
    [str(2**63), "9" * 19, str(2**64)])
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | tricky | surrogates | huge
    | st.text(alphabet=st.characters(codec="utf-8")) | st.integers(0, 900).map(nested),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5) | tricky, inner, max_size=3),
    max_leaves=8,
)
mutation = st.tuples(
    st.lists(st.integers(min_value=0, max_value=50), max_size=12), junk, st.sampled_from(["replace", "drop", "insert"])
)


def mutate(body: Any, path: list[int], replacement: Any, drop: bool) -> Any:
    """A mutated copy of `body`: the node reached by walking `path` replaced or dropped (test_app uses this too)."""
    return mutate_in_place(copy.deepcopy(body), path, replacement, "drop" if drop else "replace")


def mutate_in_place(body: Any, path: list[int], replacement: Any, how: str) -> Any:
    """Replace, drop or insert next to the node reached by walking `path` (indexes taken modulo each size)."""
    parent: Any = None
    key: Any = None
    node = body
    for step in path:
        if isinstance(node, dict) and node:
            parent, key = node, sorted(node)[step % len(node)]
        elif isinstance(node, list) and node:
            parent, key = node, step % len(node)
        else:
            break
        node = parent[key]
    if parent is None:
        return replacement
    if how == "drop":
        del parent[key]
    elif how == "insert" and isinstance(parent, list):
        parent.insert(key, replacement)
    else:
        parent[key] = replacement
    return body


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.sampled_from([body for _, body in SAMPLES]), mutations=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_payloads_give_a_batch_or_a_payload_error(
    sample: Any, mutations: list[tuple[list[int], Any, str]]
) -> None:
    body = copy.deepcopy(sample)
    for path, replacement, how in mutations:
        body = mutate_in_place(body, path, replacement, how)
    check_batch(body)


def check_batch(body: Any) -> None:
    """`body` gives a PayloadError in plain words, or a batch whose every part can be stored and logged."""
    try:
        batch = parse_webhook(body)
    except PayloadError as err:
        assert str(err) and len(str(err)) < 200
        return
    for m in batch.messages:
        assert isinstance(m.id, str) and m.id and m.customer.key and isinstance(m.timestamp, int)
        storable(dump_message(m), m.id, m.customer.key, m.customer.name or "", m.timestamp)
    for s in batch.statuses:
        assert isinstance(s.id, str) and s.id and isinstance(s.status, str)
        storable(s.id, s.status, s.recipient_id, s.timestamp)
    assert all(isinstance(i, str) and len(i) <= 64 for i in batch.ignored)
    assert all(isinstance(r, str) and len(r) < 200 for r in batch.rejected)
    storable(*batch.rejected, *batch.ignored)


def leaves(body: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path to every text and number in `body`: where Meta's data (names, ids, timestamps) sits."""
    if isinstance(body, dict):
        return [p for k, v in sorted(body.items()) for p in leaves(v, (*path, k))]
    if isinstance(body, list):
        return [p for i, v in enumerate(body) for p in leaves(v, (*path, i))]
    return [path]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.sampled_from([body for _, body in SAMPLES]), data=st.data(),
       hostile=surrogates | huge | st.integers(400, 900).map(lambda n: [{"name": nested(n)}]))
def test_hostile_values_at_any_leaf_give_a_storable_batch(sample: Any, data: st.DataObject, hostile: Any) -> None:
    """Surrogates, deep objects and huge integers placed where Meta puts texts, ids and numbers."""
    body = copy.deepcopy(sample)
    places = leaves(body)
    path = data.draw(st.sampled_from(places)) if places else ()
    node = body
    for key in path[:-1]:
        node = node[key]
    if path:
        node[path[-1]] = hostile
    check_batch(body)


def storable(*values: str | int) -> None:
    """What the webhook stores and logs: UTF-8 texts and SQLite's 64-bit integers."""
    for value in values:
        if isinstance(value, str):
            value.encode("utf-8")
        else:
            assert -(2**63) <= value < 2**63


@pytest.mark.parametrize("where", ["text", "name", "id", "status_id", "contacts", "timestamp"])
def test_surrogates_deep_cards_and_huge_numbers_are_stored_or_skipped_by_name(where: str) -> None:
    """The three kinds of signed body that answered 500 (issue 16 item 7), each at the place it was found."""
    message = copy.deepcopy(load("E1-"))
    value = message["entry"][0]["changes"][0]["value"]
    status = copy.deepcopy(load("E16-"))["entry"][0]["changes"][0]["value"]["statuses"][0]
    value["statuses"] = [status]
    if where == "text":
        value["messages"][0]["text"] = {"body": "x\ud800y"}
    elif where == "name":
        value["contacts"][0]["profile"]["name"] = "\udfffLan"
    elif where == "id":
        value["messages"][0]["id"] = "wamid.\ud800"
    elif where == "status_id":
        status["id"] = "wamid.\udbff"
    elif where == "contacts":
        value["messages"][0] = {**value["messages"][0], "type": "contacts", "contacts": [{"name": nested(700)}]}
        value["messages"][0].pop("text", None)
    else:
        status["timestamp"] = str(2**63)
    raw = json.dumps(message).encode()  # as Meta sends it: the surrogate as a \\uD800 escape
    batch = parse_webhook(json.loads(raw), body=raw)
    assert batch == parse_webhook(json.loads(raw))  # the raw body only spares the walk when it holds no such escape
    for m in batch.messages:
        storable(dump_message(m), m.id, m.customer.name or "", m.timestamp)
    for s in batch.statuses:
        storable(s.id, s.timestamp)
    if where == "contacts":
        assert batch.messages == () and "contacts card nests more than" in batch.rejected[0]
    else:
        assert len(batch.messages) == len(batch.statuses) == 1


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_a_lone_surrogate_is_found_in_a_body_of_any_encoding_json_reads(encoding: str) -> None:
    message = copy.deepcopy(load("E1-"))
    message["entry"][0]["changes"][0]["value"]["messages"][0]["text"] = {"body": "x\udc00y"}
    raw = json.dumps(message).encode(encoding)
    [m] = parse_webhook(json.loads(raw), body=raw).messages
    assert m.text == "x\ufffdy"


def test_deep_nesting_and_thousands_of_messages() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = {"a": deep}
    body = copy.deepcopy(load("E1-"))
    value = body["entry"][0]["changes"][0]["value"]
    value["messages"][0]["context"] = deep
    one = value["messages"][0]
    value["messages"] = [dict(one, id=f"wamid.{i}", text={"body": "🙂 Tiếng Việt có dấu ̀"}) for i in range(3000)]
    batch = parse_webhook(body)
    assert len(batch.messages) == 3000 and batch.rejected == ()
