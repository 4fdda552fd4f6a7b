import asyncio
import contextlib
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from wabot.db import pgsql, sql
from wabot.db.base import open_database
from wabot.db.postgres import Lost, PgStore, Stale
from wabot.errors import DatabaseError
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


async def test_inbox_dedupes_and_survives_reopen(db_target: str) -> None:
    store = await open_database(db_target)
    fresh = await store.record([message("a"), message("b"), message("a")], [], now=1.0)
    assert [m.id for _, m in fresh] == ["a", "b"]
    assert await store.record([message("b")], [], now=2.0) == []
    await store.close()

    store = await open_database(db_target)  # a restart: nothing processed yet, both are pending, in order
    pending = await store.pending()
    assert [m for _, m in pending] == [message("a"), message("b")]
    assert await store.record([message("a")], [], now=3.0) == []  # still a duplicate after the restart
    await store.close()


async def test_finish_turn_saves_state_queues_replies_and_marks_done(db_target: str) -> None:
    store = await open_database(db_target)
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


async def test_statuses_move_forward_only_and_keep_errors(db_target: str) -> None:
    store = await open_database(db_target)
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


async def test_retry_and_failure_bookkeeping(db_target: str) -> None:
    store = await open_database(db_target)
    [a, b] = await store.finish_turn(seq=None, customer="c", state=State(), bodies=[{"n": 1}, {"n": 2}], now=1.0)
    await store.mark_retry(a.id, code=130429, error="rate limit", now=2.0)
    await store.mark_failed(b.id, code=131026, error="undeliverable", now=2.0)
    [queued] = await store.queued()
    assert (queued.id, queued.attempts) == (a.id, 1)
    got = await store.outbox_row(b.id)
    assert got is not None and (got["status"], got["error_code"], got["attempts"]) == ("failed", 131026, 1)
    await store.close()


async def test_skip_marks_done_and_forgets_the_conversation(db_target: str) -> None:
    store = await open_database(db_target)
    [(seq, _)] = await store.record([message("a")], [], now=1.0)
    await store.finish_turn(seq=None, customer="84912345678", state=State(flow="main"), bodies=[], now=1.0)
    await store.skip(seq, customer="84912345678")
    assert await store.pending() == []
    assert await store.load_state("84912345678") is None
    await store.close()


async def test_handoff_is_listed_with_reason_and_first_time_until_resumed(db_target: str) -> None:
    store = await open_database(db_target)
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


async def test_opt_out_round_trip(db_target: str) -> None:
    store = await open_database(db_target)
    assert not await store.opted_out("84912345678")
    await store.set_opted_out("84912345678", True, now=1.0)
    assert await store.opted_out("84912345678")
    await store.finish_turn(seq=None, customer="84912345678", state=State(flow="main"), bodies=[], now=2.0)
    assert await store.opted_out("84912345678")  # a later turn does not clear it
    await store.set_opted_out("84912345678", False, now=3.0)
    assert not await store.opted_out("84912345678")
    await store.close()


async def test_history_interleaves_in_and_out_and_purge_keeps_recent(db_target: str) -> None:
    store = await open_database(db_target)
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


async def test_purge_forgets_statuses_by_their_whole_second_against_a_fractional_cutoff(db_target: str) -> None:
    store = await open_database(db_target)
    try:
        await store.record([], [status("w1", "sent"), status("w2", "delivered")], now=1764000000.0)
        # both statuses carry Meta's 1764000000; a cutoff half a second later takes them (a rounded one did not)
        assert await store.purge(before=1764000000.5) == 2
        await store.record([], [status("w3", "read")], now=1764000000.0)
        assert await store.purge(before=1764000000.0) == 0  # not older than the cutoff: kept
    finally:
        await store.close()


async def test_purge_commits_batch_by_batch(db_target: str) -> None:
    store = await open_database(db_target)
    await store.record([message(f"old{i}", customer=f"8491000{i:04d}") for i in range(20)], [], now=1.0)
    await store.record([message("new")], [], now=100.0)
    for seq, m in await store.pending():
        await store.skip(seq, customer=m.customer.key)  # done: history the purge may forget
    if pgsql.is_url(db_target):
        other = await asyncpg.connect(db_target)

        async def count() -> int:
            return int(await other.fetchval("SELECT count(*) FROM inbox"))

        async def close() -> None:
            await other.close()
    else:
        plain = sqlite3.connect(db_target)

        async def count() -> int:
            return int(plain.execute("SELECT count(*) FROM inbox").fetchone()[0])

        async def close() -> None:
            plain.close()

    seen: set[int] = set()
    purging = asyncio.create_task(store.purge(before=50.0, batch=1))
    while not purging.done():  # another connection watching: one transaction would show only 21, then 1
        seen.add(await count())
        await asyncio.sleep(0.001)
    assert await purging == 20
    assert seen & set(range(2, 21)), f"no batch committed on its own: counts seen {sorted(seen)}"
    assert await count() == 1
    await close()
    await store.close()


async def test_a_database_newer_than_the_code_is_refused_in_plain_words(db_target: str) -> None:
    store = await open_database(db_target)
    await store.close()
    if pgsql.is_url(db_target):
        conn = await asyncpg.connect(db_target)
        await conn.execute("INSERT INTO wabot_schema (version) VALUES ($1)", len(pgsql.MIGRATIONS) + 1)
        await conn.close()
    else:
        with contextlib.closing(sqlite3.connect(db_target)) as db:
            db.execute(f"PRAGMA user_version = {len(sql.MIGRATIONS) + 1}")
    with pytest.raises(DatabaseError, match=r"written by a newer wabot\. Upgrade wabot"):
        await open_database(db_target)


def test_both_stores_have_the_same_number_of_migrations() -> None:
    assert len(pgsql.MIGRATIONS) == len(sql.MIGRATIONS)


async def test_an_unreachable_postgresql_is_named_without_its_password() -> None:
    with pytest.raises(DatabaseError, match=r"Cannot connect to the PostgreSQL database postgresql://u:\*\*\*@127"):
        await open_database("postgresql://u:secret@127.0.0.1:1/nowhere")


# --- several instances (PostgreSQL only) ---------------------------------------------------------


async def test_a_customer_is_claimed_by_one_instance_until_released_or_its_lease_expires(pg_url: str) -> None:
    a, b = await PgStore.open(pg_url), await PgStore.open(pg_url)
    assert await a.claim("c1", owner="A", lease=30)
    assert not await b.claim("c1", owner="B", lease=30)
    assert await a.claim("c1", owner="A", lease=30)  # holding it again is fine
    [(seq, _)] = await b.record([message("m1", customer="c1")], [], now=1.0)
    assert not await a.release("c1", owner="A")  # a message waits: the owner must handle it first
    assert [s for s, _ in await a.pending("c1")] == [seq]
    await a.finish_turn(seq=seq, customer="c1", state=State(), bodies=[{"n": 1}], now=2.0)
    assert not await a.release("c1", owner="A")  # its reply is still queued
    [row] = await a.queued("c1")
    await a.mark_sent(row.id, wamid="w1", now=3.0)
    assert await a.release("c1", owner="A")
    assert await b.claim("c1", owner="B", lease=0.2)
    await b.record([message("m2", customer="c1")], [], now=4.0)
    assert await a.orphans() == []  # B's lease is live
    await asyncio.sleep(0.3)  # B dies: its lease runs out
    assert await a.orphans() == ["c1"]
    assert await a.claim("c1", owner="A", lease=30)
    await a.close()
    await b.close()


async def test_a_message_finished_by_another_instance_is_not_answered_twice(pg_url: str) -> None:
    a, b = await PgStore.open(pg_url), await PgStore.open(pg_url)
    [(seq, _)] = await a.record([message("m1")], [], now=1.0)
    await a.finish_turn(seq=seq, customer="84912345678", state=State(flow="a"), bodies=[{"n": 1}], now=2.0)
    with pytest.raises(Stale):
        await b.finish_turn(seq=seq, customer="84912345678", state=State(flow="b"), bodies=[{"n": 2}], now=3.0)
    assert [r.body for r in await a.queued()] == [{"n": 1}]
    assert (await a.load_state("84912345678") or State()).flow == "a"
    await a.close()
    await b.close()


async def test_a_turn_is_saved_by_an_owner_whose_lease_ran_out_unless_another_took_the_customer(pg_url: str) -> None:
    """A slow instance (its lease ran out, nobody took over) still holds the customer: refusing would strand them."""
    a, b = await PgStore.open(pg_url), await PgStore.open(pg_url)
    assert await a.claim("c1", owner="A", lease=0.05)
    [(seq, _)] = await a.record([message("m1", customer="c1")], [], now=1.0)
    await asyncio.sleep(0.1)  # A's lease runs out; B does not take c1
    [row] = await a.finish_turn(seq=seq, customer="c1", state=State(flow="a"), bodies=[{"n": 1}], now=2.0,
                                owner="A")
    assert row.body == {"n": 1}
    await asyncio.sleep(0.1)
    assert await b.claim("c1", owner="B", lease=30)  # now B takes the customer over
    [(seq2, _)] = await a.record([message("m2", customer="c1")], [], now=3.0)
    with pytest.raises(Lost):
        await a.finish_turn(seq=seq2, customer="c1", state=State(flow="late"), bodies=[{"n": 2}], now=4.0, owner="A")
    assert [s for s, _ in await b.pending("c1")] == [seq2]  # left for B, nothing of A's saved
    assert (await b.load_state("c1") or State()).flow == "a"
    await a.close()
    await b.close()


async def test_a_frozen_instances_row_locks_do_not_outlive_its_lease(pg_url: str) -> None:
    """A process stopped mid-transaction (SIGSTOP, a paused VM) holds row locks; PostgreSQL ends it after the lease."""
    a, b = await PgStore.open(pg_url, lease=0.3), await PgStore.open(pg_url, lease=0.3)
    assert await a.claim("c1", owner="A", lease=0.1)
    conn = await a.pool.acquire()
    await conn.execute("BEGIN")
    await conn.execute("UPDATE claims SET until = until WHERE customer = 'c1'")  # A's lock, then A freezes
    await asyncio.sleep(0.2)  # A's lease is over
    async with asyncio.timeout(20):  # without the timeout B waits for A for ever (30 s: asyncpg gives up)
        assert await b.claim("c1", owner="B", lease=30)
    with contextlib.suppress(asyncpg.InterfaceError):  # the pool may have seen the server end it, and let it go
        conn.terminate()
        await a.pool.release(conn)
    await a.close()
    await b.close()


async def test_heartbeat_counts_live_instances_and_notices_reach_the_others(pg_url: str) -> None:
    a, b = await PgStore.open(pg_url), await PgStore.open(pg_url)
    assert await a.heartbeat(owner="A", lease=5) == 1
    assert await b.heartbeat(owner="B", lease=5) == 2
    heard: list[str] = []
    stop = await b.listen(heard.append)
    await a.notify("pause token expired")
    async with asyncio.timeout(5):
        while not heard:  # noqa: ASYNC110 - the listener fills the list
            await asyncio.sleep(0.01)
    assert heard == ["pause token expired"]
    await stop()
    await a.leave(owner="A")
    assert await b.heartbeat(owner="B", lease=5) == 1
    await a.close()
    await b.close()


async def test_the_reengage_template_is_queued_once_a_day_per_customer_whoever_asks(db_target: str) -> None:
    """The memory is the database's: a second instance (a second connection here) or a restart sees it."""
    a, b = await open_database(db_target), await open_database(db_target)
    template = {"type": "template", "template": {"name": "hello_world"}}
    [row] = await a.reengage("c1", template, now=1000.0, every=86400)
    assert row.body == template
    assert await b.reengage("c1", template, now=1000.5, every=86400) == []  # the other instance, the same day
    assert await a.reengage("c1", template, now=1000.0 + 86399, every=86400) == []
    assert len(await b.reengage("c2", template, now=1001.0, every=86400)) == 1  # another customer
    assert len(await b.reengage("c1", template, now=1000.0 + 86400, every=86400)) == 1  # a day later
    assert [r.customer for r in await a.queued()] == ["c1", "c2", "c1"]
    await a.close()
    await b.close()


async def test_customers_like_and_dry_run_on_both_stores(db_target: str) -> None:
    """`wabot history` finds numbers by pattern and shows dry-run replies as such, on either database."""
    store = await open_database(db_target)
    for mid, number in (("a", "84912345678"), ("b", "84912999678"), ("c", "84987654321")):
        [(seq, _)] = await store.record([message(mid, customer=number)], [], now=1.0)
        [row] = await store.finish_turn(seq=seq, customer=number, state=State(), bodies=[{"type": "text"}], now=1.0)
        await store.mark_dry_run(row.id, now=2.0)
    assert await store.customers_like("84912345678") == ["84912345678"]
    assert await store.customers_like("*912345678") == ["84912345678"]
    assert await store.customers_like("8491????678") == ["84912345678", "84912999678"]
    assert await store.customers_like("8491????678", limit=1) == ["84912345678"]
    assert await store.customers_like("*000") == []
    statuses = {r[4] for r in await store.history("84987654321") if r[2] == "out"}
    assert statuses == {"dry-run"}
    await store.close()


async def test_both_schemas_have_the_same_tables_and_columns(tmp_path: Path, pg_url: str) -> None:
    """Every table SQLite's migrations make exists on PostgreSQL with the same columns (the twins' queries rely on
    it); PostgreSQL has only its coordination tables (claims, instances) and its schema version table besides."""
    lite = await open_database(tmp_path / "wabot.db")
    await lite.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "wabot.db")) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                           " AND name NOT LIKE 'sqlite_%'")]
        on_sqlite = {t: {c[1] for c in db.execute(f"PRAGMA table_info({t})")} for t in tables}
    pg = await open_database(pg_url)
    await pg.close()
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT table_name, column_name FROM information_schema.columns"
                                " WHERE table_schema = current_schema()")
    finally:
        await conn.close()
    on_postgres: dict[str, set[str]] = {}
    for table, column in rows:
        on_postgres.setdefault(table, set()).add(column)
    assert set(on_postgres) - set(on_sqlite) == {"claims", "instances", "wabot_schema"}
    assert {t: on_postgres.get(t) for t in on_sqlite} == on_sqlite
