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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from wabot.db import sql
from wabot.state import State, Status
from wabot.whatsapp import inbound

T = TypeVar("T")

PURGE_BATCH = 1000  # rows a purge transaction deletes: a few milliseconds on the loop (bench/purge.py)
LOCKED_RETRIES = 40  # with pauses growing to 0.25 s: about 8 seconds before a locked database is an error


@dataclass(frozen=True, slots=True)
class OutRow:
    """One queued outgoing message."""

    id: int
    customer: str
    body: dict[str, Any]
    attempts: int = 0
    payload: str = ""  # `body` as the JSON text stored (sent as is: no second encoding)


class Store:
    """The database. Open with `await Store.open(path)`, close with `await store.close()`."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self.closed = False

    @classmethod
    async def open(cls, path: Path | str, *, synchronous: str = "normal") -> Store:
        return cls(sql.connect(str(path), synchronous=synchronous), str(path))

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.conn.close()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self.closed:
            raise sqlite3.ProgrammingError(f"the database {self.path} is closed")
        for attempt in range(1, LOCKED_RETRIES + 1):
            try:
                return fn(self.conn, *args)
            except sqlite3.OperationalError as exc:  # each call is one transaction: nothing was written
                if attempt == LOCKED_RETRIES or ("locked" not in str(exc) and "busy" not in str(exc)):
                    raise
            await asyncio.sleep(min(0.25, 0.01 * attempt))
        raise AssertionError("unreachable")

    # --- inbox --------------------------------------------------------------------------------

    async def record(
        self, messages: Iterable[inbound.Message], statuses: Iterable[inbound.Status], *, now: float
    ) -> list[tuple[int, inbound.Message]]:
        """Store a webhook's messages and statuses in one commit; return the messages seen for the first time."""
        return await self._run(sql.record, list(messages), list(statuses), now)

    async def pending(self) -> list[tuple[int, inbound.Message]]:
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
    ) -> list[OutRow]:
        """In one commit: save the new state, queue the replies, mark the inbound message done.

        `contact` refreshes who the customer is; `handoff` is the reason when this turn opened a handoff.
        """
        rows = await self._run(sql.finish_turn, seq, customer, state, bodies, now, contact, handoff)
        return [OutRow(*r) for r in rows]

    async def queue(self, customer: str, bodies: list[dict[str, Any]], *, now: float) -> list[OutRow]:
        """Queue messages that are not a bot turn (an agent's reply, a re-engagement template)."""
        return [OutRow(*r) for r in await self._run(sql.queue, customer, bodies, now)]

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

    async def set_opted_out(self, customer: str, opted_out: bool, *, now: float) -> None:
        await self._run(sql.set_opted_out, customer, opted_out, now)

    async def opted_out(self, customer: str) -> bool:
        return await self._run(sql.opted_out, customer)

    # --- history ------------------------------------------------------------------------------

    async def history(self, customer: str | None = None, *, limit: int = 0) -> list[tuple[Any, ...]]:
        """Inbound and outbound messages, oldest first: (customer, at, "in"|"out", payload, status, error).

        `payload` is the stored JSON text (an inbound message or an outgoing Graph body).
        With `limit`, the most recent `limit` entries.
        """
        return await self._run(sql.history, customer, limit)

    async def purge(self, *, before: float, batch: int = PURGE_BATCH) -> int:
        """Forget finished conversation history older than `before` (the retention period); return rows deleted.

        A batch at a time, yielding to the loop in between: 2 million rows in one transaction held the loop
        for 3.4 seconds (issue 15).
        """
        total = 0
        for which in range(len(sql.PURGES)):
            while True:
                removed = await self._run(sql.purge_batch, which, before, batch)
                total += removed
                if removed < batch:
                    break
                await asyncio.sleep(0)
        return total

    # --- outbox -------------------------------------------------------------------------------

    async def queued(self) -> list[OutRow]:
        """Every outgoing message not yet accepted by Meta, oldest first."""
        return [OutRow(*r) for r in await self._run(sql.queued)]

    async def oldest_queued(self) -> float | None:
        """When the oldest reply still queued was created (unix time), or None when the outbox is empty."""
        return await self._run(sql.oldest_queued)

    async def mark_sent(self, row_id: int, *, wamid: str, now: float) -> None:
        await self._run(sql.mark_sent, [(wamid, now, row_id)])

    async def mark_sent_many(self, sent: list[tuple[str, float, int]]) -> None:
        """(wamid, when, outbox id) for several replies, in one commit."""
        await self._run(sql.mark_sent, sent)

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
            "UPDATE outbox SET attempts = attempts + 1, error_code = ?, error = ?, updated_at = ? WHERE id = ?",
            (code, error, now, row_id),
        )

    async def outbox_row(self, row_id: int) -> dict[str, Any] | None:
        return await self._run(sql.outbox_row, row_id)
