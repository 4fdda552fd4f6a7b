"""Group commit: the write transactions asked for in one pass of the event loop (under load: in a few
milliseconds, see GroupCommit) share one SQLite commit.

A commit in WAL mode writes every page the transaction changed to the WAL file: the inbox's, the conversations'
and the outbox's pages and their indexes, a few write() calls each time. At 1,000 messages a second a webhook,
a turn and a send result each took their own commit (issue 14 item 5, bench/compare.py). Here the calls made
while the loop runs one pass (webhooks read in that pass, turns that finished, sends that came back) wait for
the next pass, then run one after the other inside one BEGIN IMMEDIATE ... COMMIT, each in a savepoint of its
own (`sql.transaction` nests; a call alone needs none): a call that fails is rolled back alone and its caller
gets its error; the others commit. Nobody's call returns before the commit that holds its work, so every
guarantee stays as it was (a webhook is answered 200 only once its messages are on disk; a turn's state,
replies and inbox mark commit together); a commit that fails fails every call in it, with its error.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from wabot.db import sql

T = TypeVar("T")

Call = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]


SPACING = 0.004  # seconds: under load, commits are at least this far apart (see GroupCommit)


class GroupCommit:
    """Collects write calls during a loop pass; commits them together at the start of the next pass.

    Under load a commit waits until `spacing` seconds after the one before it, gathering what comes meanwhile:
    a commit's cost is mostly the pages it writes to the WAL (each index's leaf, the tables' last pages),
    which the calls of one commit share (bench/README.md: a webhook and a turn cost 112 µs in commits of
    their own, 62 µs two to a commit, 46 µs four), and the waiting callers wake together. A call after a
    quiet moment commits in the next pass, as before; under load each waits at most `spacing` more (the
    echo bench at 500 msg/s: 0.89 ms of CPU a message with 2 ms, 0.77 ms with 4 ms; e2e p50 6 -> 9.5 ms).
    """

    def __init__(
        self, conn: sqlite3.Connection, gate: threading.Lock,
        slow: Callable[[Callable[[sqlite3.Connection], list[Any]]], Awaitable[list[Any]]],
        worked: Callable[[], None] = lambda: None, spacing: float = SPACING,
    ) -> None:
        self.conn = conn
        self.spacing = spacing
        self.last = -spacing  # loop.time() of the last flush
        self.gate = gate  # shared with the purge thread (store.py)
        self.slow = slow  # the store's own runner: waits for the gate and retries a locked database
        self.worked = worked  # told when a commit made here (not through `slow`) ended
        self.calls: list[Call] = []
        self.closed = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.commits = 0  # commits made (tests and the bench count them)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` in the next commit (this pass's, or under load `spacing` after the last one); its
        result once that commit is made.

        `fn` writes inside `sql.transaction`, as every function of sql.py does: alone in its pass, that is the commit.
        """
        if self.closed:
            raise sqlite3.ProgrammingError("the database is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self.calls.append((fn, args, future))
        if len(self.calls) == 1:
            wait = self.last + self.spacing - loop.time()
            if wait > 0:
                loop.call_later(wait, self._flush)
            else:
                loop.call_soon(self._flush)  # runs after every callback already due in this pass
        return await future

    def close(self) -> None:
        self.closed = True
        self._fail(self._take(), sqlite3.ProgrammingError("the database is closed"))

    def _take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls

    def _flush(self) -> None:
        calls = self._take()
        if not calls:
            return
        self.last = asyncio.get_running_loop().time()
        if self.closed:
            self._fail(calls, sqlite3.ProgrammingError("the database is closed"))
            return
        if self.gate.acquire(blocking=False):  # the usual case: commit right here, no task, no extra pass
            try:
                results = _apply(self.conn, calls)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    self._fail(calls, exc)
                    return
            except Exception as exc:
                self._fail(calls, exc)
                return
            else:
                self._settle(calls, results)
                return
            finally:
                self.gate.release()
                self.worked()
        task = asyncio.create_task(self._later(calls))  # the purge thread holds the gate, or another program
        self.tasks.add(task)                             # locks the file: wait without blocking the loop
        task.add_done_callback(self.tasks.discard)

    async def _later(self, calls: list[Call]) -> None:
        try:
            results = await self.slow(lambda conn: _apply(conn, calls))
        except Exception as exc:
            self._fail(calls, exc)
        else:
            self._settle(calls, results)

    def _settle(self, calls: list[Call], results: list[tuple[bool, Any]]) -> None:
        self.commits += 1
        for (_, _, future), (ok, value) in zip(calls, results, strict=True):
            if future.done():  # its caller was cancelled: the work is committed all the same
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    @staticmethod
    def _fail(calls: list[Call], exc: BaseException) -> None:
        for _, _, future in calls:
            if not future.done():
                future.set_exception(exc)


def _apply(conn: sqlite3.Connection, calls: list[Call]) -> list[tuple[bool, Any]]:
    """Every call in one transaction, each in its savepoint: (True, result) or (False, the error it raised)."""
    if len(calls) == 1:  # alone in its pass (most of them at a few hundred messages a second): its own
        fn, args, _ = calls[0]  # transaction is the commit, no savepoint; its error fails it as a commit's would
        return [(True, fn(conn, *args))]
    results: list[tuple[bool, Any]] = []
    with sql.transaction(conn):
        for fn, args, _ in calls:
            try:
                results.append((True, fn(conn, *args)))
            except Exception as exc:  # rolled back to its savepoint by sql.transaction; the others go on
                results.append((False, exc))
    return results


__all__ = ["GroupCommit"]
