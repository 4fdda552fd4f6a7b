"""The database, for the event loop: every call is one whole transaction (the queries are in sql.py).

SQLite in WAL mode with synchronous=NORMAL: a commit survives a crash of the process (kill -9)
and costs tens of microseconds, because it only appends to the WAL file without waiting for the
disk (database.synchronous: full waits for the disk, to survive a power cut too). So the
transactions run right on the event loop: handing each to a worker thread (as aiosqlite does,
per statement) cost more than the work itself, in thread switches and in waits for the GIL, and
capped the server far below 1,000 messages a second (bench/README.md). The methods stay `async`
so that the store can move to another process or database without changing its callers. Calls
never interleave: each runs to its end before the loop goes on. Nothing long runs in one call:
the purge goes a batch at a time, and a database locked by another process is retried after a
pause that lets the loop serve (not by SQLite waiting on the loop).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from wabot.db import campaignsql, codec, sql, timersql
from wabot.db.areas import Event
from wabot.db.group import GroupCommit
from wabot.db.liteareas import LiteApi, LiteCampaigns, LiteConsole
from wabot.db.purge import PURGES, Pacing, purge_apart, purge_batch
from wabot.db.rows import OutRow
from wabot.state import State, Status, TimerChange
from wabot.whatsapp import inbound

__all__ = ["OutRow", "Store"]

T = TypeVar("T")

PURGE_BATCH = 250  # the most rows a purge transaction deletes: a few milliseconds (bench/purge.py)
PURGE_PAUSE = 0.01  # seconds the loop is left to serve between two batches (a database in memory)
AUTOCHECKPOINT = 1000  # SQLite's default: the server's commits checkpoint the WAL past this many pages
LOCKED_RETRIES = 40  # with pauses growing to 0.25 s: about 8 seconds before a locked database is an error


class Store:
    """The database. Open with `await Store.open(path)`, close with `await store.close()`."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.closed = False
        self.gate = threading.Lock()  # held by each transaction, the server's and the purge thread's
        self.pacing = Pacing(busy_at=time.monotonic())  # tells the purge thread when the server works
        # the hot path's writes (webhooks, turns, send results) made in one loop pass share one commit
        self.group = GroupCommit(conn, self.gate, self._run, worked=self._worked)
        self.events = False  # events.url is set: failed statuses are kept as reply_failed events (shopevents.py)
        self.api = LiteApi(self._run)  # the business API's data (db/areas.py)
        self.campaigns = LiteCampaigns(self._run, self.group.run)
        self.console = LiteConsole(self._run)

    @classmethod
    async def open(cls, path: Path | str, *, synchronous: str = "normal") -> Store:
        return cls(sql.connect(str(path), synchronous=synchronous), str(path))

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.group.close()
            self.conn.close()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self.closed:
            raise sqlite3.ProgrammingError(f"the database {self.path} is closed")
        self.pacing.busy_at = 0.0  # working: the purge thread waits for a quiet moment
        while not self.gate.acquire(blocking=False):  # noqa: ASYNC110 - a thread holds it: poll, the loop free
            await asyncio.sleep(0.001)
        try:
            for attempt in range(1, LOCKED_RETRIES + 1):
                try:
                    return fn(self.conn, *args)
                except sqlite3.OperationalError as exc:  # each call is one transaction: nothing was written
                    if attempt == LOCKED_RETRIES or ("locked" not in str(exc) and "busy" not in str(exc)):
                        raise
                await asyncio.sleep(min(0.25, 0.01 * attempt))
        finally:
            self.gate.release()
            self.pacing.busy_at = time.monotonic()
        raise AssertionError("unreachable")

    def _worked(self) -> None:
        """A group commit ended on the loop (not through `_run`): the purge thread waits for quiet from now."""
        self.pacing.busy_at = time.monotonic()

    # --- inbox --------------------------------------------------------------------------------

    async def record(
        self, messages: Iterable[inbound.Message], statuses: Iterable[inbound.Status], *, now: float
    ) -> list[tuple[int, inbound.Message]]:
        """Store a webhook's messages and statuses in one commit; return the messages seen for the first time."""
        return await self.group.run(sql.record, list(messages), list(statuses), now, self.events)

    async def pending(self) -> list[tuple[int, codec.Pending]]:
        """Inbound messages stored but not yet fully processed (after a crash or restart), oldest first."""
        return await self._run(sql.pending)

    async def skip(self, seq: int, *, customer: str) -> None:
        """Give up on a message the bot could not process: mark it done and start the customer over."""
        await self._run(sql.skip, seq, customer)

    # --- conversations ------------------------------------------------------------------------

    async def load_state(self, customer: str) -> State | None:
        return await self._run(sql.load_state, customer)

    async def finish_turn(
        self,
        *,
        seq: int | None,
        customer: str,
        state: State,
        bodies: list[dict[str, Any]],
        now: float,
        contact: inbound.Customer | None = None,
        handoff: str | None = None,
        events: Iterable[Event] = (),
        timers: Iterable[TimerChange] = (),
        fired: timersql.Fired | None = None,
        state_json: str | None = None,
    ) -> list[OutRow]:
        """In one commit: save the new state, queue the replies, mark the inbound message done.

        `contact` refreshes who the customer is; `handoff` is the reason when this turn opened a handoff;
        `events` are kept for the shop's systems in the same commit; so are the timers the turn set or
        cancelled, and `fired`, the timer this turn handled (its id and what it did). `state_json`: the
        state's JSON when the caller has it already (server/limits.py measured it).
        """
        rows = await self.group.run(sql.finish_turn, seq, customer, state, bodies, now, contact, handoff,
                                    list(events), list(timers), fired, state_json)
        return [OutRow(*r) for r in rows]

    async def queue(self, customer: str, bodies: list[dict[str, Any]], *, now: float) -> list[OutRow]:
        """Queue messages that are not a bot turn (an agent's reply, a re-engagement template)."""
        return [OutRow(*r) for r in await self._run(sql.queue, customer, bodies, now)]

    async def reengage(self, customer: str, body: dict[str, Any], *, now: float, every: float) -> list[OutRow]:
        """Queue the re-engagement template unless one was queued for the customer less than `every` seconds ago."""
        return [OutRow(*r) for r in await self._run(sql.reengage, customer, body, now, every)]

    async def contact(self, customer: str) -> inbound.Customer | None:
        """Who the customer is, as last seen in a message."""
        return await self._run(sql.contact, customer)

    async def handoffs(self) -> list[dict[str, Any]]:
        """Customers waiting for a person, longest wait first."""
        return await self._run(sql.handoffs)

    async def last_inbound(self, customer: str) -> float | None:
        """When the customer last wrote (None: never, or longer ago than the history kept)."""
        return await self._run(sql.last_inbound, customer)

    async def count_status(self, status: Status) -> int:
        return await self._run(sql.count_status, status)

    async def set_opted_out(
        self, customer: str, opted_out: bool, *, now: float, events: Iterable[Event] = ()
    ) -> None:
        await self._run(sql.set_opted_out, customer, opted_out, now, list(events))

    async def opted_out(self, customer: str) -> bool:
        return await self._run(sql.opted_out, customer)

    # --- history ------------------------------------------------------------------------------

    async def history(self, customer: str | None = None, *, limit: int = 0) -> list[tuple[Any, ...]]:
        """Inbound and outbound messages, oldest first: (customer, at, "in"|"out", payload, status, error).

        `payload` is the stored JSON text (an inbound message or an outgoing Graph body).
        With `limit`, the most recent `limit` entries.
        """
        return await self._run(sql.history, customer, limit)

    async def customers_like(self, pattern: str, *, limit: int = 10) -> list[str]:
        """Customers whose number matches the GLOB `pattern` (history.number_pattern makes one)."""
        return await self._run(sql.customers_like, pattern, limit)

    async def purge(self, *, before: float, batch: int = PURGE_BATCH) -> int:
        """Forget finished conversation history older than `before` (the retention period); return rows deleted.

        Batches of at most `batch` rows, each its own transaction, in a worker thread on a connection of its
        own, which also does the WAL checkpoints; the server's connection makes none meanwhile (db/purge.py
        says why: issue 15, bench/purge.py).
        """
        if self.path == ":memory:":  # a private database: no second connection can see it
            total = 0
            for which in range(len(PURGES)):
                while (removed := await self._run(purge_batch, which, before, batch)) == batch:
                    total += removed
                    await asyncio.sleep(PURGE_PAUSE)
                total += removed
            return total
        stop = threading.Event()
        self.pacing.batch = batch
        self.conn.execute("PRAGMA wal_autocheckpoint=0")  # sets a callback: no lock, no disk
        try:
            return await asyncio.to_thread(purge_apart, self.path, before, pacing=self.pacing, stop=stop,
                                           gate=self.gate)
        except asyncio.CancelledError:  # shutting down: the thread ends after its current batch
            stop.set()
            raise
        finally:
            if not self.closed:
                self.conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT}")

    # --- outbox -------------------------------------------------------------------------------

    async def queued(self) -> list[OutRow]:
        """Every outgoing message not yet accepted by Meta, oldest first."""
        once = await self._run(campaignsql.once_ids)
        return [OutRow(*r, once=r[0] in once) for r in await self._run(sql.queued)]

    async def oldest_queued(self) -> float | None:
        """When the oldest reply still queued was created (unix time), or None when the outbox is empty."""
        return await self._run(sql.oldest_queued)

    async def mark_sent(self, row_id: int, *, wamid: str, now: float) -> None:
        await self.group.run(sql.mark_sent, [(wamid, now, row_id)])

    async def mark_sent_many(self, sent: list[tuple[str, float, int]]) -> None:
        """(wamid, when, outbox id) for several replies, in one commit."""
        await self.group.run(sql.mark_sent, sent)

    async def mark_dry_run(self, row_id: int, *, now: float) -> None:
        """The reply was written to the log instead of sent: status 'dry-run', in the history and the export."""
        await self._run(
            sql.update,
            "UPDATE outbox SET status = 'dry-run', attempts = attempts + 1, updated_at = ? WHERE id = ?",
            (now, row_id),
        )

    async def mark_failed(self, row_id: int, *, code: int | None, error: str, now: float) -> None:
        await self._run(
            sql.update,
            "UPDATE outbox SET status = 'failed', error_code = ?, error = ?, attempts = attempts + 1,"
            " updated_at = ? WHERE id = ?",
            (code, error, now, row_id),
        )

    async def mark_retry(self, row_id: int, *, code: int | None, error: str, now: float) -> None:
        await self._run(
            sql.update,
            "UPDATE outbox SET attempts = attempts + 1, sending = 0, error_code = ?, error = ?, updated_at = ?"
            " WHERE id = ?",
            (code, error, now, row_id),
        )

    async def outbox_row(self, row_id: int) -> dict[str, Any] | None:
        return await self._run(sql.outbox_row, row_id)

    # --- flow timers (db/timersql.py) ----------------------------------------------------------

    async def claim_timers(self, *, owner: str, now: float, until: float, limit: int = 100
                           ) -> list[timersql.TimerRow]:
        """Due timers nobody holds, now held by `owner` until `until` (handed to the dispatcher once)."""
        return await self._run(timersql.claim, owner, now, until, limit)

    async def next_timer(self) -> float | None:
        """When the next pending timer is due (None: none is)."""
        return await self._run(timersql.next_due)

    async def timer_pending(self, timer: int) -> bool:
        return await self._run(timersql.pending, timer)

    async def unclaim_timers(self) -> int:
        """Void the claims a killed server left (this is the only server of the file): overdue timers fire now."""
        return await self._run(timersql.unclaim)

    async def timers(self, customer: str, *, limit: int = 20) -> list[dict[str, Any]]:
        """The customer's timers, newest first (pending, fired, cancelled, with notes)."""
        return await self._run(timersql.of_customer, customer, limit)

    async def stale_handoffs(self, *, before: float) -> list[str]:
        """Customers in a handoff that no person has answered since `before`."""
        return await self._run(sql.stale_handoffs, before)
