"""The whole server on loopback: signed webhooks in, replies out at a fake Graph API, SQLite underneath."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests import PAYLOADS
from tests.apptools import PHONE_ID, SECRET, VERIFY, Client, config, envelope, post, rows, settle, start, tap, text
from tests.fakegraph import WINDOW_CLOSED, FakeGraph
from wabot.config import load_settings
from wabot.server.keys import DISPATCHER, SENDER, STORE
from wabot.server.webhook import sign
from wabot.whatsapp import outbound

LAN = "84901234567"


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str) -> Client:
    return await start(aiohttp_client, tmp_path, fake, db=db_target)


def option(body: dict[str, Any], title: str) -> tuple[str, str]:
    """The (kind, id) to tap the button or list row titled `title` in a sent interactive body."""
    action = body["interactive"]["action"]
    for b in action.get("buttons", []):
        if b["reply"]["title"] == title:
            return "button_reply", b["reply"]["id"]
    for section in action.get("sections", []):
        for r in section["rows"]:
            if r["title"] == title:
                return "list_reply", r["id"]
    raise AssertionError(f"no option {title!r} in {action}")


# --- Meta's verification -------------------------------------------------------------------------


async def test_verification_echoes_the_challenge_only_for_the_right_token(client: Client) -> None:
    ok = await client.get("/webhook/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"})
    assert (ok.status, await ok.text(), ok.content_type) == (200, "1158201444", "text/plain")
    for params in ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
                   {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"}, {}):
        resp = await client.get("/webhook/whatsapp", params=params)
        assert resp.status == 403


# --- a conversation end to end ---------------------------------------------------------------------


async def test_a_signed_text_is_answered_through_the_graph_api(
    client: Client, fake: FakeGraph, tmp_path: Path
) -> None:
    assert await post(client, envelope(text(LAN, "xin chào"))) == 200
    sent = await fake.wait_sent(2)
    assert fake.texts(LAN) == ["Xin chào Lan! 👋 Chào mừng đến với Trà Sen.", "Bạn cần gì hôm nay?"]
    kind, row = option(sent[1], "Đặt hàng")
    assert kind == "list_reply"
    assert await post(client, envelope(tap(LAN, row, "Đặt hàng", kind))) == 200
    await fake.wait_sent(3)
    assert "Bạn muốn đặt món nào?" in fake.texts(LAN)[2]
    assert fake.violations == []
    await settle(client)
    assert {s for (s,) in await rows(client, "SELECT status FROM outbox")} == {"sent"}


async def test_replies_to_one_customer_keep_their_order_while_others_run_alongside(
    client: Client, fake: FakeGraph
) -> None:
    customers = [f"8490000{i:04d}" for i in range(20)]
    assert await post(client, envelope(*(text(c, "hi") for c in customers))) == 200
    await fake.wait_sent(40)
    for c in customers:
        assert fake.texts(c) == ["Xin chào Lan! 👋 Chào mừng đến với Trà Sen.", "Bạn cần gì hôm nay?"]


async def test_two_messages_in_one_batch_are_handled_in_order(client: Client, fake: FakeGraph) -> None:
    assert await post(client, envelope(text(LAN, "hi"), text(LAN, "Cửa hàng ở đâu?"))) == 200
    await settle(client)
    texts = fake.texts(LAN)
    assert texts[:2] == ["Xin chào Lan! 👋 Chào mừng đến với Trà Sen.", "Bạn cần gì hôm nay?"]
    assert "[location]" in texts[2:]


# --- at least once in, exactly once out ------------------------------------------------------------


async def test_a_redelivered_message_is_answered_once(client: Client, fake: FakeGraph, tmp_path: Path) -> None:
    payload = envelope(text(LAN, "hi", mid="wamid.same"))
    for _ in range(10):
        assert await post(client, payload) == 200
    await settle(client)
    assert len(fake.sent) == 2
    assert await rows(client, "SELECT COUNT(*) FROM inbox") == [(1,)]


async def test_a_stale_read_of_the_queue_never_sends_a_reply_again(client: Client, fake: FakeGraph) -> None:
    """The cluster hands the sender rows it read from the database; a read that raced their sends still lists them."""
    store, sender = client.app[STORE], client.app[SENDER]
    assert await post(client, envelope(text(LAN, "hi"))) == 200  # the 24-hour window opens
    await fake.wait_sent(2)
    await settle(client)
    body = outbound.to_body(outbound.Recipient(LAN), outbound.Text("from staff"))
    rows_ = await store.queue(LAN, [body], now=time.time())
    stale = [r for r in await store.queued() if r.customer == LAN]  # read while still queued...
    sender.enqueue(rows_)
    await fake.wait_sent(3)
    await settle(client)  # ...sent and recorded since
    sender.adopt(stale)
    await settle(client)
    await asyncio.sleep(0.2)
    assert fake.texts(LAN)[2:] == ["from staff"]


async def test_a_message_stored_while_its_customer_is_given_up_is_answered_at_once(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL: a message that comes while the claim is being deleted (the DELETE did not see it) is claimed anew
    and answered; taken for still held, its turn was refused (the claim gone, as if another instance had taken the
    customer: "stalled longer than its lease") and it waited for the next renewal's orphan takeover."""
    client = await start(aiohttp_client, tmp_path, fake, db=pg_url)
    cluster = client.app[DISPATCHER].cluster
    assert cluster is not None
    store = cluster.store
    delete, raced = store.release, list[bool]()

    async def racing(customer: str, *, owner: str) -> bool:
        released = await delete(customer, owner=owner)
        if released and not raced:  # the customer writes again just after the claim's row is gone
            raced.append(True)
            assert await post(client, envelope(text(LAN, "menu", mid="wamid.race"))) == 200
            await asyncio.sleep(0.1)  # its task runs before this instance learns the claim is gone
        return released

    store.release = racing  # type: ignore[method-assign]
    assert await post(client, envelope(text(LAN, "hi"))) == 200
    await fake.wait_sent(3, within=10)  # the greeting and the menu, then "menu" answered
    assert raced and await rows(client, "SELECT COUNT(*) FROM inbox WHERE done = 0") == [(0,)]
    assert not [r.message for r in caplog.records if "stalled" in r.message or "taking over" in r.message]


async def test_statuses_are_recorded_forward_only(client: Client, fake: FakeGraph, tmp_path: Path) -> None:
    await post(client, envelope(text(LAN, "hi")))
    await fake.wait_sent(2)
    await settle(client)
    wamid = fake.requests[0].wamid
    value = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": PHONE_ID},
             "statuses": [{"id": wamid, "status": s, "timestamp": "1764000001", "recipient_id": LAN}
                          for s in ("read", "delivered", "read")]}
    assert await post(client, envelope(value)) == 200
    assert await rows(client, f"SELECT status FROM outbox WHERE wamid = '{wamid}'") == [("read",)]
    assert await rows(client, f"SELECT COUNT(*) FROM statuses WHERE wamid = '{wamid}'") == [(2,)]


# --- what is refused, and that refusing loses nothing -------------------------------------------------


async def test_a_wrong_or_missing_signature_is_refused_and_never_stored(
    client: Client, fake: FakeGraph, tmp_path: Path
) -> None:
    payload = envelope(text(LAN, "hi"))
    assert await post(client, payload, secret="not-the-app-secret") == 401
    assert await post(client, payload, secret=None) == 401
    body = json.dumps(payload).encode()
    tampered = body.replace(b"hi", b"ho")
    resp = await client.post("/webhook/whatsapp", data=tampered, headers={"X-Hub-Signature-256": sign(SECRET, body)})
    assert resp.status == 401
    await asyncio.sleep(0.05)
    assert await rows(client, "SELECT COUNT(*) FROM inbox") == [(0,)]
    assert fake.requests == []


@pytest.mark.parametrize(("raw", "status"), [
    (b"{not json", 400),
    (b"\xff\xfe\x00garbage", 400),
    (b"[1, 2]", 400),
    (json.dumps({"object": "page", "entry": []}).encode(), 400),
    (b"[" * 100000 + b"]" * 100000, 400),
])
async def test_malformed_bodies_answer_400_not_500(client: Client, raw: bytes, status: int) -> None:
    assert await post(client, None, raw=raw) == status


async def test_a_non_ascii_signature_answers_401_not_500(client: Client) -> None:
    """Issue 16 item 8: non-ASCII bytes in X-Hub-Signature-256 answered 500 with a traceback."""
    for header in ("sha256=é" + "0" * 63, "sha256=\u00ff"):
        resp = await client.post("/webhook/whatsapp", data=b"{}", headers={"X-Hub-Signature-256": header})
        assert resp.status == 401


async def test_a_huge_batch_is_refused_before_parsing_and_logged_once(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 16 item 14: 113,295 tiny messages gave 113,000 log lines and 2.7 s of parsing before the 413."""
    client = await start(aiohttp_client, tmp_path, fake, "server: {max_batch: 1000}\n")
    broken = [{"from": LAN, "id": f"wamid.{i}", "type": "text"} for i in range(10_000)]  # no timestamp, no text
    body = envelope(text(LAN, "hi"))
    body["entry"][0]["changes"][0]["value"]["messages"] = broken
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert await post(client, body) == 413
    assert len([r for r in caplog.records if r.name.startswith("wabot")]) == 1
    body["entry"][0]["changes"][0]["value"]["messages"] = [{"from": LAN, "type": "text"}] * 500  # no ids
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert await post(client, body) == 200
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and "(and 497 more)" in skipped[0].getMessage()


async def test_oversized_bodies_and_batches_answer_413(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client = await start(aiohttp_client, tmp_path, fake, "server: {max_body_bytes: 2048, max_batch: 3}\n", db=db_target)
    assert await post(client, None, raw=b'{"x": "' + b"a" * 5000 + b'"}') == 413
    assert await post(client, envelope(*(text(f"8490000{i:04d}", "hi") for i in range(4)))) == 413
    assert await post(client, envelope(*(text(f"8490000{i:04d}", "hi") for i in range(3)))) == 200


def reference_payloads() -> list[tuple[str, Any]]:
    found = [(f.stem, json.loads(f.read_text("utf-8"))) for f in sorted((PAYLOADS / "webhooks").glob("*.json"))]
    meta = json.loads((PAYLOADS / "meta-openapi-webhook-examples.json").read_text("utf-8"))
    found += list(meta.items())
    for f in sorted((PAYLOADS / "pywa").glob("*.json")):
        found += [(f"{f.stem}:{k}", v) for k, v in json.loads(f.read_text("utf-8")).items()]
    return found


async def test_every_reference_payload_is_accepted_and_nobody_is_left_stuck(
    client: Client, fake: FakeGraph, tmp_path: Path
) -> None:
    for name, payload in reference_payloads():
        assert await post(client, payload) == 200, name
    await settle(client, within=20)
    assert await rows(client, "SELECT COUNT(*) FROM inbox WHERE done = 0") == [(0,)]
    assert fake.violations == []


# --- Graph trouble -------------------------------------------------------------------------------


async def test_a_rate_limited_send_is_retried_until_it_goes(client: Client, fake: FakeGraph, tmp_path: Path) -> None:
    fake.script(429, {"error": {"message": "(#130429) Rate limit hit", "code": 130429}})
    fake.script(503, text="<html>Service Unavailable</html>")
    await post(client, envelope(text(LAN, "hi")))
    await fake.wait_sent(2)
    await settle(client)
    assert fake.texts(LAN)[0].startswith("Xin chào Lan")  # the greeting still came first
    assert await rows(client, "SELECT status, attempts FROM outbox ORDER BY id") == [("sent", 3), ("sent", 1)]


async def test_an_expired_token_pauses_sending_until_sighup_brings_a_new_one(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    token = tmp_path / "token"
    token.write_text("expired-token\n", encoding="utf-8")
    client = await start(aiohttp_client, tmp_path, fake, db=db_target, token_file=token)
    await post(client, envelope(text(LAN, "hi")))
    sender = client.app[SENDER]
    async with asyncio.timeout(5):
        while not sender.paused:  # noqa: ASYNC110 - waiting on the sender's state
            await asyncio.sleep(0.01)
    ready = await client.get("/readyz")
    assert ready.status == 503 and "WHATSAPP_TOKEN_FILE" in (await ready.json())["problems"][0]
    assert "expired-token" not in json.dumps(await ready.json())
    assert fake.sent == []
    token.write_text("test-token\n", encoding="utf-8")  # the operator replaces the token and sends SIGHUP
    os.kill(os.getpid(), signal.SIGHUP)
    await fake.wait_sent(2)
    assert sender.paused is None and fake.texts(LAN)[0].startswith("Xin chào Lan")


async def test_a_reply_outside_the_24_hour_window_brings_the_reengage_template(
    client: Client, fake: FakeGraph, tmp_path: Path
) -> None:
    fake.script(400, WINDOW_CLOSED)
    await post(client, envelope(text(LAN, "hi")))
    await fake.wait_sent(2)
    await settle(client)
    templates = [b for b in fake.sent if b["type"] == "template"]
    assert [t["template"]["name"] for t in templates] == ["hello_world"]
    assert (await rows(client, "SELECT status, error_code FROM outbox ORDER BY id"))[0] == ("failed", 131047)
    # a failed status for the same customer the same day does not send it again
    value = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": PHONE_ID},
             "statuses": [{"id": "wamid.x", "status": "failed", "timestamp": "1764000001", "recipient_id": LAN,
                           "errors": [{"code": 131047, "title": "Re-engagement message"}]}]}
    await post(client, envelope(value))
    await asyncio.sleep(0.1)
    await settle(client)
    assert len([b for b in fake.sent if b["type"] == "template"]) == 1


async def test_an_opted_out_customer_gets_no_template(client: Client, fake: FakeGraph, tmp_path: Path) -> None:
    await post(client, envelope(text(LAN, "STOP")))
    await fake.wait_sent(1)
    assert "Đã hủy đăng ký" in fake.texts(LAN)[0]
    fake.script(400, WINDOW_CLOSED)
    await post(client, envelope(text(LAN, "hi")))
    await settle(client)
    await asyncio.sleep(0.1)
    assert [b for b in fake.sent if b["type"] == "template"] == []
    await post(client, envelope(text(LAN, "START")))  # opts back in
    await settle(client)
    assert await rows(client, f"SELECT opted_out_at FROM conversations WHERE customer = '{LAN}'") == [(None,)]


# --- restarts ------------------------------------------------------------------------------------------


async def test_work_left_by_a_crash_is_done_after_the_restart(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    from wabot.db.base import open_database
    from wabot.whatsapp.parse import parse_webhook

    settings = load_settings(config(tmp_path, fake.url, db=db_target))
    store = await open_database(settings.database_target)  # as if the server died right after answering 200
    batch = parse_webhook(envelope(text(LAN, "hi"), text("84909999999", "hi")))
    await store.record(batch.messages, batch.statuses, now=1.0)
    await store.queue("84908888888", [{"messaging_product": "whatsapp", "recipient_type": "individual",
                                       "to": "+84908888888", "type": "text", "text": {"body": "còn nợ"}}], now=1.0)
    await store.close()
    client = await start(aiohttp_client, tmp_path, fake, db=db_target)
    await fake.wait_sent(5)
    await settle(client)
    assert fake.texts("84908888888") == ["còn nợ"]
    assert len(fake.texts(LAN)) == 2 and len(fake.texts("84909999999")) == 2


async def test_fuzzed_signed_bodies_never_500_never_leak_secrets_never_leave_anyone_stuck(
    client: Client, fake: FakeGraph, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import random

    from tests.whatsapp.test_inbound import leaves, mutate, nested

    caplog.set_level(logging.DEBUG)
    rng = random.Random(20261125)
    samples = [body for _, body in reference_payloads()]
    junk: list[Any] = [None, True, -1, 1e308, "", "💥" * 50, "a\u0301" * 30, [], {}, [[[[[]]]]], {"type": "x"}]
    # issue 16 item 7: each of these answered 500 (lone surrogates, 490-900 deep objects, integers >= 2^63)
    junk += ["\ud800", "Lan\udfff", 2**63, str(2**63), -(2**64), [{"name": nested(700)}], nested(490)]
    statuses = set()
    for _ in range(300):
        body = mutate(rng.choice(samples), [rng.randrange(50) for _ in range(rng.randrange(12))],
                      rng.choice(junk), rng.random() < 0.5)
        if rng.random() < 0.5:  # put it where Meta's texts, ids and numbers sit
            body = copy.deepcopy(rng.choice(samples))
            *path, last = rng.choice(leaves(body))
            node = body
            for key in path:
                node = node[key]
            node[last] = rng.choice(junk)
        raw = json.dumps(body).encode()
        if rng.random() < 0.1:
            raw = raw[: rng.randrange(len(raw) + 1)]  # cut short: invalid JSON
        statuses.add(await post(client, None, raw=raw))
    await settle(client, within=20)
    assert statuses <= {200, 400}
    assert await rows(client, "SELECT COUNT(*) FROM inbox WHERE done = 0") == [(0,)]
    assert "test-token" not in caplog.text and SECRET not in caplog.text


async def test_a_slow_http_step_holds_up_only_its_own_customer(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    async def order(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({"status": "đang giao", "eta": "2026-11-28"})

    shop = web.Application()
    shop.router.add_get("/orders/{code}", order)
    async with TestServer(shop, host="127.0.0.1") as server:
        shop_api = str(server.make_url("")).rstrip("/")
        client = await start(aiohttp_client, tmp_path, fake, "http: {private_hosts: [127.0.0.1]}\n", db=db_target,
                             env={"SHOP_API": shop_api})
        await post(client, envelope(text(LAN, "hi")))
        await post(client, envelope(text(LAN, "tra cuu don hang")))
        await settle(client)
        await post(client, envelope(text(LAN, "DH54321")))  # now waiting on the slow shop API
        await asyncio.sleep(0.1)
        await post(client, envelope(text("84909999999", "hi")))
        await fake.wait_sent(len(fake.sent) + 2)
        assert len(fake.texts("84909999999")) == 2  # answered while LAN still waits
        assert not any("DH54321" in t for t in fake.texts(LAN))
        await settle(client)
    assert "Đơn DH54321: đang giao, giao dự kiến 28/11/2026." in fake.texts(LAN)


async def test_a_database_that_refuses_the_write_answers_503_so_meta_retries(client: Client, fake: FakeGraph) -> None:
    from wabot.server.keys import STORE

    await client.app[STORE].close()  # as good as a full disk: nothing can be stored
    assert await post(client, envelope(text(LAN, "hi"))) == 503
    assert fake.requests == []


async def test_a_read_only_database_makes_readyz_say_so_and_is_counted(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    """Issue 16 item 10: /readyz stayed 200 while every webhook answered 503, and no metric counted them."""
    from tests.apptools import admin
    from wabot.db.store import Store
    from wabot.server.keys import STORE

    client = await start(aiohttp_client, tmp_path, fake)
    assert (await client.get("/readyz")).status == 200
    store = client.app[STORE]
    assert isinstance(store, Store)  # the SQLite store (this test's fixture)
    store.conn.execute("PRAGMA query_only = ON")  # reads work, writes fail: a read-only file
    assert await post(client, envelope(text(LAN, "hi"))) == 503
    resp = await client.get("/readyz")
    assert resp.status == 503 and "could not be stored" in " ".join((await resp.json())["problems"])
    async with admin(client) as session, session.get("/metrics") as metrics_page:
        assert 'wabot_webhook_rejected_total{reason="store_failed"} 1.0' in await metrics_page.text()


async def test_webhooks_sharing_a_commit_that_fails_all_answer_503(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph
) -> None:
    """Webhooks read in one loop pass share one commit (db/group.py): when it fails, none of them is answered 200."""
    from wabot.db.store import Store
    from wabot.server.keys import STORE

    client = await start(aiohttp_client, tmp_path, fake)
    store = client.app[STORE]
    assert isinstance(store, Store)
    store.conn.execute("PRAGMA query_only = ON")
    statuses = await asyncio.gather(*(post(client, envelope(text(f"8490100000{i}", "hi", mid=f"wamid.g{i}")))
                                      for i in range(4)))
    assert statuses == [503] * 4
    store.conn.execute("PRAGMA query_only = OFF")  # Meta delivers them again: now every one is answered
    statuses = await asyncio.gather(*(post(client, envelope(text(f"8490100000{i}", "hi", mid=f"wamid.g{i}")))
                                      for i in range(4)))
    assert statuses == [200] * 4
    await fake.wait_sent(8)
    assert sorted({r.body["to"].lstrip("+") for r in fake.requests}) == [f"8490100000{i}" for i in range(4)]


async def test_read_receipts_mark_each_message_read_with_typing(
    aiohttp_client: Any, tmp_path: Path, fake: FakeGraph, db_target: str
) -> None:
    client = await start(aiohttp_client, tmp_path, fake, db=db_target, whatsapp="read_receipts: true,")
    await post(client, envelope(text(LAN, "hi", mid="wamid.read.1")))
    await fake.wait_sent(2)
    await settle(client)
    async with asyncio.timeout(5):
        while not (reads := [r.body for r in fake.requests if r.body.get("status") == "read"]):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert reads == [{"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.read.1",
                      "typing_indicator": {"type": "text"}}]
    assert fake.violations == []


async def test_no_read_receipts_unless_asked(client: Client, fake: FakeGraph) -> None:
    await post(client, envelope(text(LAN, "hi")))
    await fake.wait_sent(2)
    assert not any(r.body.get("status") == "read" for r in fake.requests)
