"""The database's upkeep: the purge in small batches, a locked file retried, durability, backups."""

from __future__ import annotations

import asyncio
import itertools
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bench.purge import fill as bench_fill
from tests.db.test_store import message
from wabot.db import backup, purge, sql
from wabot.db import store as store_module
from wabot.db.store import Store
from wabot.state import State


async def fill(store: Store, first: int, n: int, *, now: float) -> None:
    """n finished inbound messages, each with a sent reply, all stored at `now`."""
    fresh = await store.record([message(f"m{i}", customer=f"849{i:08d}") for i in range(first, first + n)], [],
                               now=now)
    for seq, m in fresh:
        [row] = await store.finish_turn(seq=seq, customer=m.customer.key, state=State(),
                                        bodies=[{"type": "text", "text": {"body": "ok"}}], now=now)
        await store.mark_sent(row.id, wamid=f"wamid.{row.id}", now=now)


class Ticker:
    """Counts the event loop's turns and the longest time between two of them."""

    def __init__(self) -> None:
        self.turns = 0
        self.longest = 0.0
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0)
            now = time.perf_counter()
            self.turns += 1
            self.longest = max(self.longest, now - last)
            last = now

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_purge_goes_in_batches_while_the_loop_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await Store.open(tmp_path / "w.db")
    await fill(store, 0, 25, now=1000.0)
    await fill(store, 100, 3, now=5000.0)
    calls: list[tuple[int, int, int, int]] = []  # (table, rows deleted, loop turns so far, synchronous)
    ticker = Ticker()
    original = purge.purge_batch
    store.pacing.budget = 3600.0  # no batch is too slow: the sizes below are the ones asked for

    def counted(conn: sqlite3.Connection, which: int, before: float, limit: int) -> int:
        removed = original(conn, which, before, limit)
        calls.append((which, removed, ticker.turns, conn.execute("PRAGMA synchronous").fetchone()[0]))
        return removed

    autocheckpoints: set[int] = set()

    async def watch() -> None:  # the server's connection, seen from the loop while the purge runs
        while True:
            if 0 < len(calls) < 15:  # between the first batch and the last
                autocheckpoints.add(store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
            await asyncio.sleep(0.001)

    monkeypatch.setattr(purge, "purge_batch", counted)
    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    assert await store.purge(before=2000.0, batch=4) == 50  # 25 messages and 25 replies
    watcher.cancel()
    await ticker.stop()
    assert [(w, n) for w, n, _, _ in calls] == [(0, 4)] * 6 + [(0, 1)] + [(1, 4)] * 6 + [(1, 1), (2, 0)]
    turns = [t for _, _, t, _ in calls]
    assert turns[-1] - turns[0] >= len(turns) - 1, "the loop did not turn while the purge ran"
    assert {s for *_, s in calls} == {1}, "the purge's commits waited for the disk (synchronous=NORMAL expected)"
    assert autocheckpoints == {0}, "the server's connection checkpointed (on the loop) during the purge"
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == store_module.AUTOCHECKPOINT
    left = await store.history()
    assert len(left) == 6 and {r[1] for r in left} == {5000.0}
    await store.close()


async def test_a_purge_batch_slower_than_its_budget_makes_the_next_smaller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await Store.open(tmp_path / "w.db")
    await fill(store, 0, 60, now=1000.0)
    sizes: list[int] = []
    original = purge.purge_batch

    def counted(conn: sqlite3.Connection, which: int, before: float, limit: int) -> int:
        sizes.append(limit)
        return original(conn, which, before, limit)

    monkeypatch.setattr(purge, "purge_batch", counted)
    store.pacing.budget, store.pacing.floor = 0.0, 10  # every batch is too slow
    assert await store.purge(before=2000.0, batch=40) == 120
    assert sizes[0] == 40 and set(sizes[1:]) == {10}, sizes  # down to the floor, and no lower
    await store.close()


def test_the_purge_waits_for_a_quiet_moment_but_not_for_ever() -> None:
    stop = threading.Event()
    pacing = purge.Pacing(busy_at=0.0, quiet=0.005)  # 0.0: the server is in a transaction now
    started = time.perf_counter()
    assert not purge._wait_quiet(pacing, stop, longest=0.3)  # never quiet: gives up after its patience
    assert time.perf_counter() - started >= 0.3
    pacing.busy_at = time.monotonic() - 1  # the server's last transaction ended a second ago
    assert purge._wait_quiet(pacing, stop, longest=0.3)
    pacing.busy_at = time.monotonic()  # it just ended: quiet 5 ms from now
    started = time.perf_counter()
    assert purge._wait_quiet(pacing, stop, longest=10)
    assert time.perf_counter() - started >= 0.004


async def test_a_locked_database_is_retried_without_freezing_the_loop(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "w.db")
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing: the sqlite3 shell, a migration
    ticker = Ticker()
    asyncio.get_running_loop().call_later(0.4, other.execute, "COMMIT")
    started = time.perf_counter()
    fresh = await store.record([message("a")], [], now=1.0)
    waited = time.perf_counter() - started
    await ticker.stop()
    assert [m.id for _, m in fresh] == ["a"]
    assert waited >= 0.35
    assert ticker.longest < 0.2, f"the loop stood still for {ticker.longest:.3f} s"
    other.close()
    await store.close()


async def test_a_database_locked_for_good_is_an_error_in_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "LOCKED_RETRIES", 3)
    store = await Store.open(tmp_path / "w.db")
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await store.record([message("a")], [], now=1.0)
    other.execute("ROLLBACK")
    other.close()
    assert [m.id for _, m in await store.record([message("a")], [], now=1.0)] == ["a"]  # nothing half-done
    await store.close()


@pytest.mark.parametrize(("setting", "pragma"), [("normal", 1), ("full", 2)])
async def test_synchronous_setting_reaches_sqlite(tmp_path: Path, setting: str, pragma: int) -> None:
    store = await Store.open(tmp_path / "w.db", synchronous=setting)
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == pragma
    await store.close()


async def test_a_database_is_copied_before_it_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    old = sqlite3.connect(db, isolation_level=None)  # a database left by the version before
    old.executescript(f"BEGIN; {sql.MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
    old.execute("INSERT INTO conversations (customer, state, updated_at) VALUES ('84912345678', '{}', 1)")
    old.close()
    store = await Store.open(db)
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(sql.MIGRATIONS)
    await store.close()
    copy = sqlite3.connect(tmp_path / "w.db.v1.bak")
    assert copy.execute("PRAGMA user_version").fetchone()[0] == 1
    assert copy.execute("SELECT customer FROM conversations").fetchall() == [("84912345678",)]
    copy.close()
    store = await Store.open(db)  # up to date: no second copy
    await store.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".bak") == ["w.db.v1.bak"]  # noqa: ASYNC240


async def test_backup_copies_what_is_committed_while_the_server_holds_it_open(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "w.db")
    await fill(store, 0, 5, now=1.0)  # committed to the WAL, not yet to the main file
    size = backup.backup(tmp_path / "w.db", tmp_path / "copy.db")
    assert size == (tmp_path / "copy.db").stat().st_size > 0
    assert not (tmp_path / "copy.db-wal").exists()
    copied = await Store.open(tmp_path / "copy.db")
    assert len(await copied.history()) == 10
    await copied.close()
    with pytest.raises(FileExistsError, match="never overwrites"):
        backup.backup(tmp_path / "w.db", tmp_path / "copy.db")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        backup.backup(tmp_path / "nothing.db", tmp_path / "other.db")
    await store.close()


async def test_the_wal_starts_over_during_a_purge_while_the_server_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "w.db"
    await asyncio.to_thread(bench_fill, db, 120_000, at=1000.0)  # ~90 MB of WAL if it never started over (measured)
    store = await Store.open(db)
    store.pacing.wal_pages = 1000  # 4 MB
    store.pacing.checkpoint_every, store.pacing.patience, store.pacing.pause = 0.05, 0.0, 0.001
    wal = f"{db}-wal"
    peak = 0

    async def serve() -> None:  # a server writing all along, as webhooks come in
        nonlocal peak
        for i in itertools.count():
            await store.record([message(f"live{i}")], [], now=5000.0)
            peak = max(peak, os.path.getsize(wal))  # noqa: ASYNC240 - a stat, no waiting
            await asyncio.sleep(0.001)

    writer = asyncio.create_task(serve())
    assert await store.purge(before=2000.0, batch=250) == 120_000
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    assert peak < 30 * 2**20, f"the WAL grew to {peak / 2**20:.0f} MB"
    await store.close()


def wal_frames(conn: sqlite3.Connection) -> int:
    """Frames in the WAL file now (a checkpoint with nothing left to copy writes nothing)."""
    return int(conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


def grown_wal(db: Path) -> sqlite3.Connection:
    """A database whose WAL holds a few hundred frames; the connection that wrote them (no automatic checkpoints)."""
    sql.connect(str(db)).close()
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE pad (x BLOB)")
    conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)"
                 " INSERT INTO pad SELECT randomblob(2000) FROM n")
    assert os.path.getsize(f"{db}-wal") > 100 * 4096  # not copied into the database file yet
    return conn


def test_a_big_wal_starts_over_without_holding_the_server_off_when_it_is_not_writing(tmp_path: Path) -> None:
    conn = grown_wal(tmp_path / "w.db")
    pacing = purge.Pacing(busy_at=time.monotonic() - 1, wal_pages=50)
    wal = purge.Checkpoints(conn, threading.Lock(), pacing, threading.Event())
    wal.checkpoint()
    assert wal.held == 0
    conn.execute("INSERT INTO pad VALUES (1)")  # the next writer starts the WAL over
    assert wal_frames(conn) < 10
    conn.close()


def test_a_checkpoint_that_the_server_committed_during_is_one_step_behind(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    wrote = grown_wal(db)
    server = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    server.execute("BEGIN IMMEDIATE")  # begun before the checkpoint, committed while it runs
    server.execute("INSERT INTO pad VALUES (1)")
    wrote.close()

    def commit() -> int:
        if server.in_transaction:
            server.execute("COMMIT")
        return 0

    class Purge(sqlite3.Connection):
        """The purge's connection: the server's transaction commits while a checkpoint of this one's runs."""

        def execute(self, query: str, *args: Any) -> sqlite3.Cursor:
            self.set_progress_handler(commit if "wal_checkpoint" in query else None, 1)
            return super().execute(query, *args)

    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False, factory=Purge)
    wal = purge.Checkpoints(conn, threading.Lock(), purge.Pacing(wal_pages=50), threading.Event())
    assert not wal.copy()  # all copied, maybe, but the server wrote meanwhile: the WAL may not start over
    assert not server.in_transaction
    for c in (conn, server):
        c.close()


def test_a_server_in_the_way_of_every_checkpoint_is_held_off_for_the_last_one(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    gate = threading.Lock()  # the server's transactions hold it; the last checkpoint too
    wrote = grown_wal(db)
    server = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    server.execute("BEGIN")  # reading all along without the gate: no checkpoint can copy what came after
    server.execute("SELECT COUNT(*) FROM pad").fetchone()
    wrote.execute("INSERT INTO pad VALUES (1)")
    wrote.close()

    class Purge(sqlite3.Connection):
        """The purge's connection: the server's transaction ends when the gate is taken, as in the store."""

        def execute(self, query: str, *args: Any) -> sqlite3.Cursor:
            if gate.locked() and server.in_transaction:
                server.execute("COMMIT")
            return super().execute(query, *args)

    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False, factory=Purge)
    wal = purge.Checkpoints(conn, gate, purge.Pacing(busy_at=time.monotonic() - 1, wal_pages=50, copies=3),
                            threading.Event())
    wal.checkpoint()
    assert wal.held == 1  # three copies without the gate, then one with it
    assert not gate.locked()
    conn.execute("INSERT INTO pad VALUES (2)")
    assert wal_frames(conn) < 10, "the WAL did not start over"
    for c in (conn, server):
        c.close()
