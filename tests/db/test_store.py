from pathlib import Path

from wabot.db.store import Store
from wabot.state import HANDOFF, WAITING, Frame, State
from wabot.whatsapp import inbound


def message(mid: str, customer: str = "84912345678", body: str = "xin chào") -> inbound.Message:
    return inbound.Message(
        id=mid,
        customer=inbound.Customer(customer, name="An"),
        phone_number_id="106540352242922",
        timestamp=1764000000,
        type="text",
        content=inbound.Text(body),
    )


def status(wamid: str, kind: str, *errors: inbound.ErrorInfo) -> inbound.Status:
    return inbound.Status(wamid, kind, 1764000000, "84912345678", "106540352242922", errors=errors)


async def test_inbox_dedupes_and_survives_reopen(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    store = await Store.open(db)
    fresh = await store.record([message("a"), message("b"), message("a")], [], now=1.0)
    assert [m.id for _, m in fresh] == ["a", "b"]
    assert await store.record([message("b")], [], now=2.0) == []
    await store.close()

    store = await Store.open(db)  # a restart: nothing processed yet, both are pending, in order
    pending = await store.pending()
    assert [m for _, m in pending] == [message("a"), message("b")]
    assert await store.record([message("a")], [], now=3.0) == []  # still a duplicate after the restart
    await store.close()


async def test_finish_turn_saves_state_queues_replies_and_marks_done(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "w.db")
    [(seq, _)] = await store.record([message("a")], [], now=1.0)
    state = State(flow="main", step="menu", status=WAITING, vars={"tên": "An", "n": 2},
                  stack=(Frame("main", "#2", True),))
    rows = await store.finish_turn(
        seq=seq, customer="84912345678", state=state,
        bodies=[{"type": "text", "text": {"body": "Chào An"}}, {"type": "text", "text": {"body": "2"}}], now=2.0,
    )
    assert [r.body["text"]["body"] for r in rows] == ["Chào An", "2"]
    assert rows[0].id < rows[1].id
    assert await store.pending() == []
    assert await store.load_state("84912345678") == state
    assert await store.load_state("nobody") is None
    assert [r.id for r in await store.queued()] == [r.id for r in rows]
    await store.close()


async def test_statuses_move_forward_only_and_keep_errors(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "w.db")
    [(seq, _)] = await store.record([message("a")], [], now=1.0)
    [row, other] = await store.finish_turn(
        seq=seq, customer="84912345678", state=State(), bodies=[{"n": 1}, {"n": 2}], now=1.0
    )
    await store.mark_sent(row.id, wamid="wamid.1", now=2.0)
    await store.record([], [status("wamid.1", "read"), status("wamid.1", "delivered")], now=3.0)
    got = await store.outbox_row(row.id)
    assert got is not None and got["status"] == "read"  # delivered arrived late: no step back
    await store.mark_sent(other.id, wamid="wamid.2", now=2.0)
    err = inbound.ErrorInfo(131047, "Re-engagement message", "Re-engagement message", "24 hours passed")
    await store.record([], [status("wamid.2", "failed", err), status("wamid.2", "failed", err)], now=3.0)
    got = await store.outbox_row(other.id)
    assert got is not None
    assert (got["status"], got["error_code"]) == ("failed", 131047)
    assert "24 hours passed" in got["error"]
    assert await store.queued() == []
    await store.close()


async def test_retry_and_failure_bookkeeping(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "w.db")
    [a, b] = await store.finish_turn(seq=None, customer="c", state=State(), bodies=[{"n": 1}, {"n": 2}], now=1.0)
    await store.mark_retry(a.id, code=130429, error="rate limit", now=2.0)
    await store.mark_failed(b.id, code=131026, error="undeliverable", now=2.0)
    [queued] = await store.queued()
    assert (queued.id, queued.attempts) == (a.id, 1)
    got = await store.outbox_row(b.id)
    assert got is not None and (got["status"], got["error_code"], got["attempts"]) == ("failed", 131026, 1)
    await store.close()


async def test_skip_marks_done_and_forgets_the_conversation(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "w.db")
    [(seq, _)] = await store.record([message("a")], [], now=1.0)
    await store.finish_turn(seq=None, customer="84912345678", state=State(flow="main"), bodies=[], now=1.0)
    await store.skip(seq, customer="84912345678")
    assert await store.pending() == []
    assert await store.load_state("84912345678") is None
    await store.close()


async def test_handoff_is_listed_with_reason_and_first_time_until_resumed(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "w.db")
    who = inbound.Customer("84912345678", name="An")
    waiting = State(flow="support", status=HANDOFF)
    await store.finish_turn(seq=None, customer=who.key, state=waiting, bodies=[], now=10.0,
                            contact=who, handoff="muốn đổi hàng")
    await store.finish_turn(seq=None, customer=who.key, state=waiting, bodies=[], now=20.0)  # writes again
    await store.finish_turn(seq=None, customer="other", state=State(flow="main", status=WAITING), bodies=[], now=5.0)
    assert await store.handoffs() == [
        {"customer": who.key, "name": "An", "reason": "muốn đổi hàng", "since": 10.0}
    ]
    assert await store.count_status(HANDOFF) == 1
    assert await store.contact(who.key) == who
    await store.finish_turn(seq=None, customer=who.key, state=State(flow="main", status=WAITING), bodies=[], now=30.0)
    assert await store.handoffs() == []
    assert await store.contact(who.key) == who  # kept although that turn did not name the contact
    await store.close()


async def test_opt_out_round_trip(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "w.db")
    assert not await store.opted_out("84912345678")
    await store.set_opted_out("84912345678", True, now=1.0)
    assert await store.opted_out("84912345678")
    await store.finish_turn(seq=None, customer="84912345678", state=State(flow="main"), bodies=[], now=2.0)
    assert await store.opted_out("84912345678")  # a later turn does not clear it
    await store.set_opted_out("84912345678", False, now=3.0)
    assert not await store.opted_out("84912345678")
    await store.close()


async def test_history_interleaves_in_and_out_and_purge_keeps_recent(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "w.db")
    [(s1, _)] = await store.record([message("a", body="hi")], [], now=1.0)
    await store.finish_turn(seq=s1, customer="84912345678", state=State(), bodies=[{"n": 1}], now=2.0)
    [(s2, _)] = await store.record([message("b", body="menu")], [], now=100.0)
    await store.finish_turn(seq=s2, customer="84912345678", state=State(), bodies=[{"n": 2}], now=101.0)
    await store.queue("someone-else", [{"n": 3}], now=50.0)
    rows = await store.history("84912345678")
    assert [(r[1], r[2]) for r in rows] == [(1.0, "in"), (2.0, "out"), (100.0, "in"), (101.0, "out")]
    assert [(r[1], r[2]) for r in await store.history("84912345678", limit=2)] == [(100.0, "in"), (101.0, "out")]
    assert len(await store.history()) == 5
    queued = await store.queued()
    for row in queued:
        await store.mark_sent(row.id, wamid=f"w{row.id}", now={1: 2.0, 2: 101.0, 3: 200.0}[row.body["n"]])
    assert await store.purge(before=60.0) == 2  # the first message and its reply; not the later ones
    assert [(r[1], r[2]) for r in await store.history("84912345678")] == [(100.0, "in"), (101.0, "out")]
    await store.close()
