"""Group commit (db/group.py): the writes of one loop pass share one SQLite commit, and nobody hears back before it."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from tests.db.test_store import message
from wabot.db import sql
from wabot.db.store import Store
from wabot.state import State


def begins(store: Store) -> list[str]:
    """Every BEGIN the store's connection runs from now on."""
    seen: list[str] = []
    store.conn.set_trace_callback(lambda statement: seen.append(statement) if statement.startswith("BEGIN") else None)
    return seen


def inbox_ids(path: Path) -> list[str]:
    """What another connection (another process, a restart) sees committed."""
    with contextlib.closing(sqlite3.connect(path)) as other:
        return [r[0] for r in other.execute("SELECT message_id FROM inbox ORDER BY seq")]


async def test_two_webhooks_in_one_loop_pass_share_one_commit_and_hear_back_only_after_it(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "w.db")
    seen = begins(store)
    committed: dict[str, list[str]] = {}

    async def webhook(mid: str) -> list[int]:
        fresh = await store.record([message(mid, customer=f"8491000000{mid[-1]}")], [], now=1.0)
        committed[mid] = inbox_ids(tmp_path / "w.db")  # what was on disk when this caller heard back
        return [seq for seq, _ in fresh]

    first, second = await asyncio.gather(webhook("wamid.1"), webhook("wamid.2"))
    assert len(seen) == 1 and store.group.commits == 1  # one transaction for both
    assert first != second and len(first) == len(second) == 1
    assert committed == {"wamid.1": ["wamid.1", "wamid.2"], "wamid.2": ["wamid.1", "wamid.2"]}
    await store.close()


async def test_turns_and_send_results_of_one_pass_join_the_same_commit(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "t.db")
    [(seq, m)] = await store.record([message("wamid.a")], [], now=1.0)
    seen = begins(store)
    state = State(flow="main", step="menu")
    rows, _, fresh = await asyncio.gather(
        store.finish_turn(seq=seq, customer=m.customer.key, state=state, bodies=[{"type": "text"}], now=2.0),
        store.mark_sent_many([("wamid.out.0", 2.0, 999)]),  # no such row: changes nothing, fails nothing
        store.record([message("wamid.b", customer="84910000009")], [], now=2.0),
    )
    assert len(seen) == 1
    assert [r.body for r in rows] == [{"type": "text"}] and len(fresh) == 1
    assert await store.load_state(m.customer.key) == state
    assert [getattr(mm, "id", None) for _, mm in await store.pending()] == ["wamid.b"]  # the inbox mark went too
    await store.close()


async def test_a_call_that_fails_is_rolled_back_alone_and_the_others_commit(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "f.db")

    def half_then_fail(conn: sqlite3.Connection) -> None:
        with sql.transaction(conn):
            conn.execute("INSERT INTO inbox (message_id, customer, message, received_at) VALUES ('x', 'c', '{}', 0)")
            raise sqlite3.IntegrityError("this call's own data is wrong")

    bad, good = await asyncio.gather(store.group.run(half_then_fail), store.record([message("wamid.ok")], [], now=1),
                                     return_exceptions=True)
    assert isinstance(bad, sqlite3.IntegrityError) and "own data" in str(bad)
    assert isinstance(good, list) and len(good) == 1
    assert inbox_ids(tmp_path / "f.db") == ["wamid.ok"]  # the failed call's insert is gone, the other one stays
    assert store.group.commits == 1
    await store.close()


async def test_a_commit_that_fails_fails_every_caller_and_keeps_nothing(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "r.db")
    store.conn.execute("PRAGMA query_only = ON")  # as good as a read-only file: every write is refused
    results = await asyncio.gather(store.record([message("wamid.1")], [], now=1),
                                   store.record([message("wamid.2")], [], now=1), return_exceptions=True)
    assert all(isinstance(r, sqlite3.OperationalError) for r in results), results
    store.conn.execute("PRAGMA query_only = OFF")
    assert not store.conn.in_transaction and inbox_ids(tmp_path / "r.db") == []
    assert len(await store.record([message("wamid.1")], [], now=2)) == 1  # the store works again afterwards
    await store.close()


async def test_calls_waiting_when_the_store_closes_fail_instead_of_hanging(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "c.db")
    waiting = asyncio.ensure_future(store.record([message("wamid.1")], [], now=1))
    await asyncio.sleep(0)  # the call is queued for the next pass
    await store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        await waiting
    with pytest.raises(sqlite3.ProgrammingError):
        await store.record([message("wamid.2")], [], now=1)


async def test_a_gate_held_by_the_purge_thread_delays_the_commit_without_blocking_the_loop(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "g.db")
    store.gate.acquire()  # as the purge thread does around each of its batches
    call = asyncio.ensure_future(store.record([message("wamid.1")], [], now=1))
    for _ in range(5):
        await asyncio.sleep(0.002)  # the loop goes on serving meanwhile
    assert not call.done() and inbox_ids(tmp_path / "g.db") == []
    store.gate.release()
    assert len(await asyncio.wait_for(call, 5)) == 1
    assert inbox_ids(tmp_path / "g.db") == ["wamid.1"]
    await store.close()


async def test_under_load_commits_are_spaced_and_a_call_after_a_quiet_moment_is_not_held(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    store.group.spacing = 60.0  # far longer than any test may wait: a call that waits for it never ends
    async with asyncio.timeout(10):  # the first call after a quiet moment commits in the next pass
        await store.record([message("wamid.1")], [], now=1.0)
    assert store.group.commits == 1
    held = asyncio.gather(store.record([message("wamid.2")], [], now=2.0),
                          store.record([message("wamid.3", customer="84910000009")], [], now=2.0))
    await asyncio.sleep(0.2)
    assert not held.done() and store.group.commits == 1  # within the spacing of the last commit: they wait
    store.group.spacing = 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    store.group._flush()  # what the timer set for 60 s would do at its time
    await held
    assert store.group.commits == 2 and inbox_ids(tmp_path / "s.db") == ["wamid.1", "wamid.2", "wamid.3"]
    async with asyncio.timeout(10):
        await store.record([message("wamid.4", customer="84910000008")], [], now=3.0)
    assert loop.time() - started >= 0.29 and store.group.commits == 3  # not before 0.3 s after the last commit
    await store.close()
