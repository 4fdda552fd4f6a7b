"""The PostgreSQL store: the twin of store.py (same methods, same meaning) plus what several instances share.

How to add a query: write it in sql.py for SQLite and as a method here for PostgreSQL (the SQL is
usually the same text with `$1, $2` for `?`, a table-qualified column in ON CONFLICT ... DO UPDATE,
and DOUBLE PRECISION for REAL), add the method to base.Database, and run tests/db, which runs
every store test against both databases. Each method is one transaction, as in store.py.

Several instances: a customer is handled by one instance at a time, the one holding the row in
`claims` (a lease that the owner renews; it expires when the owner dies). `finish_turn` refuses a
message another instance already finished, so a lease lost to a long pause never answers twice.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg

from wabot.db import codec, pgapi, pgsql, pgtimers
from wabot.db.pgapi import Conn, PgApi
from wabot.db.pgcampaigns import PgCampaigns
from wabot.db.pgconsole import PgConsole
from wabot.db.rows import OutRow
from wabot.db.sql import _RANK, _RANK_SQL
from wabot.db.store import PURGE_PAUSE
from wabot.db.timersql import Fired, TimerRow
from wabot.state import HANDOFF, State, Status, TimerChange
from wabot.whatsapp import inbound

__all__ = ["CHANNEL", "Conn", "Lost", "PgStore", "Stale"]

PURGE_BATCH = 1000  # rows a purge transaction deletes (the work is the database server's, not the loop's)
CHANNEL = "wabot"  # LISTEN/NOTIFY channel of the instances sharing this database
ALIVE = f"SELECT COUNT(*) FROM instances WHERE seen_at >= {pgsql.NOW} - $1"


class Stale(Exception):
    """The inbound message was finished by another instance (this one's lease had expired)."""


class Lost(Stale):
    """This instance no longer holds the customer's claim (its lease ran out while it stalled): nothing saved."""


class PgStore:
    """The database on PostgreSQL. Open with `await PgStore.open(url)`, close with `await store.close()`."""

    def __init__(self, pool: asyncpg.Pool, url: str, quick: asyncpg.Pool | None = None) -> None:
        self.pool = pool
        self.quick = quick or pool  # commits that need not wait for the disk (pgsql.connect)
        self.url = url
        self.path = pgsql.shown(url)  # what messages call this database
        self.closed = False
        self.api = PgApi(pool)  # the business API's, the campaigns' and the console's data (db/areas.py)
        self.campaigns = PgCampaigns(pool)
        self.console = PgConsole(pool)
        self.events = False  # events.url is set: failed statuses are kept as reply_failed events (shopevents.py)

    @classmethod
    async def open(cls, url: str, *, lease: float | None = None) -> PgStore:
        """`lease`: database.lease_seconds of a server instance (its transactions may not stall longer)."""
        pool = await pgsql.connect(url, stall=lease)
        try:
            quick = await pgsql.connect(url, size=4, durable=False, stall=lease)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url, quick)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.pool.close()
            if self.quick is not self.pool:
                await self.quick.close()

    # --- inbox --------------------------------------------------------------------------------

    async def record(
        self, messages: Iterable[inbound.Message], statuses: Iterable[inbound.Status], *, now: float
    ) -> list[tuple[int, inbound.Message]]:
        """Store a webhook's messages and statuses in one commit; return the messages seen for the first time."""
        fresh: list[tuple[int, inbound.Message]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for m in messages:
                seq = await conn.fetchval(
                    "INSERT INTO inbox (message_id, customer, message, received_at) VALUES ($1, $2, $3, $4)"
                    " ON CONFLICT (message_id) DO NOTHING RETURNING seq",
                    m.id, m.customer.key, codec.dump_message(m), now,
                )
                if seq is not None:
                    fresh.append((int(seq), m))
            for s in statuses:
                await self._status(conn, s, now)
        return fresh

    async def _status(self, conn: Conn, s: inbound.Status, now: float) -> None:
        errors = json.dumps([_err(e) for e in s.errors], ensure_ascii=False) if s.errors else None
        await conn.execute(
            "INSERT INTO statuses (wamid, status, timestamp, recipient, errors) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT DO NOTHING",
            s.id, s.status, s.timestamp, s.recipient_id, errors,
        )
        rank = _RANK.get(s.status)
        if rank is None:
            return
        first = s.errors[0] if s.errors else None
        code = first.code if first else None
        error = f"{first.title}: {first.details or first.message}" if first else None
        moved = await conn.fetch(
            "UPDATE outbox SET status = $1, updated_at = $2, error_code = COALESCE($3, error_code),"
            f" error = COALESCE($4, error) WHERE wamid = $5 AND {_RANK_SQL} < $6 RETURNING id, customer",
            s.status, now, code, error, s.id, rank,
        )
        if self.events and s.status == "failed":  # moved forward only once: a redelivered status tells nothing twice
            for row_id, customer in moved:
                await pgapi.add_events(conn, customer, [("reply_failed", {
                    "id": str(row_id), "code": code, "error": error or "Meta reported it failed", "wamid": s.id,
                })], now)

    async def pending(self, customer: str | None = None) -> list[tuple[int, codec.Pending]]:
        """Inbound messages stored but not yet processed, oldest first (of one customer, when given)."""
        if customer is None:
            rows = await self.pool.fetch("SELECT seq, message FROM inbox WHERE done = 0 ORDER BY seq")
        else:
            rows = await self.pool.fetch(
                "SELECT seq, message FROM inbox WHERE customer = $1 AND done = 0 ORDER BY seq", customer
            )
        return [(int(seq), codec.load_pending(text)) for seq, text in rows]

    async def skip(self, seq: int, *, customer: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE inbox SET done = 1 WHERE seq = $1", seq)
            await conn.execute("DELETE FROM conversations WHERE customer = $1", customer)

    # --- conversations ------------------------------------------------------------------------

    async def load_state(self, customer: str) -> State | None:
        text = await self.pool.fetchval("SELECT state FROM conversations WHERE customer = $1", customer)
        return State.from_json(text) if text else None

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
        events: Iterable[tuple[str, dict[str, Any]]] = (),
        owner: str | None = None,
        timers: Iterable[TimerChange] = (),
        fired: Fired | None = None,
        state_json: str | None = None,
    ) -> list[OutRow]:
        """In one commit: mark the inbound message done, save the new state, queue the replies.

        `events` (to the shop's systems) are kept in the same commit.

        Raises Stale, committing nothing, when another instance already finished the message, and Lost when
        `owner` (given by an instance sharing the database) no longer holds a live claim on the customer.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            if owner is not None:  # the claim row stays locked to the commit: no takeover can slip in between
                # a lease that ran out while nobody took the customer over is still this owner's (its next renewal
                # extends it): refusing the turn then would leave the message to nobody
                held = await conn.fetchval(
                    "SELECT 1 FROM claims WHERE customer = $1 AND owner = $2 FOR UPDATE", customer, owner,
                )
                if held is None:
                    raise Lost(f"the claim is no longer held by {owner}")
            if seq is not None:
                done = await conn.fetchval("UPDATE inbox SET done = 1 WHERE seq = $1 AND done = 0 RETURNING 1", seq)
                if done is None:
                    raise Stale(f"inbox row {seq} was finished by another instance")
            await pgapi.add_events(conn, customer, events, now)
            await conn.execute(
                "INSERT INTO conversations (customer, state, status, contact, handoff_reason, handoff_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (customer) DO UPDATE SET state = excluded.state, status = excluded.status,"
                " contact = COALESCE(excluded.contact, conversations.contact),"
                " handoff_reason = CASE WHEN excluded.status = 'handoff'"
                "   THEN COALESCE(excluded.handoff_reason, conversations.handoff_reason) END,"
                " handoff_at = CASE WHEN excluded.status = 'handoff'"
                "   THEN COALESCE(conversations.handoff_at, excluded.handoff_at) END,"
                " updated_at = excluded.updated_at",
                customer, state_json if state_json is not None else state.to_json(), state.status,
                _contact(contact) if contact else None, handoff, now if state.status == HANDOFF else None, now,
            )
            await pgtimers.apply(conn, customer, timers, fired, now)
            return await pgapi.queue(conn, customer, bodies, seq, now)

    async def queue(self, customer: str, bodies: list[dict[str, Any]], *, now: float) -> list[OutRow]:
        """Queue messages that are not a bot turn (an agent's reply, a re-engagement template)."""
        async with self.pool.acquire() as conn, conn.transaction():
            return await pgapi.queue(conn, customer, bodies, None, now)

    async def reengage(self, customer: str, body: dict[str, Any], *, now: float, every: float) -> list[OutRow]:
        """Queue the re-engagement template unless one was queued for the customer less than `every` seconds ago."""
        async with self.pool.acquire() as conn, conn.transaction():
            due = await conn.fetchval(
                "INSERT INTO conversations (customer, state, updated_at, reengaged_at) VALUES ($1, $2, $3, $3)"
                " ON CONFLICT (customer) DO UPDATE SET reengaged_at = excluded.reengaged_at"
                " WHERE conversations.reengaged_at IS NULL OR conversations.reengaged_at <= $4 RETURNING 1",
                customer, State().to_json(), now, now - every,
            )
            return await pgapi.queue(conn, customer, [body], None, now) if due else []

    async def contact(self, customer: str) -> inbound.Customer | None:
        text = await self.pool.fetchval("SELECT contact FROM conversations WHERE customer = $1", customer)
        if text is None:
            return None
        d = json.loads(text)
        return inbound.Customer(d.get("wa_id"), d.get("user_id"), d.get("name"))

    async def handoffs(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT customer, contact, handoff_reason, handoff_at FROM conversations"
            " WHERE status = 'handoff' ORDER BY handoff_at"
        )
        return [
            {"customer": c, "name": json.loads(ct or "{}").get("name"), "reason": r or "", "since": at}
            for c, ct, r, at in rows
        ]

    # --- flow timers (db/pgtimers.py) ----------------------------------------------------------

    async def claim_timers(self, *, owner: str, now: float, until: float, limit: int = 100) -> list[TimerRow]:
        return await pgtimers.claim(self.pool, owner, now, until, limit)

    async def next_timer(self) -> float | None:
        return await pgtimers.next_due(self.pool)

    async def timer_pending(self, timer: int) -> bool:
        return await pgtimers.pending(self.pool, timer)

    async def unclaim_timers(self) -> int:
        return 0  # other instances may hold claims: a dead one's run out after its lease

    async def timers(self, customer: str, *, limit: int = 20) -> list[dict[str, Any]]:
        return await pgtimers.of_customer(self.pool, customer, limit)

    async def stale_handoffs(self, *, before: float) -> list[str]:
        """Customers in a handoff that no person has answered since `before` (the state keeps when one last did)."""
        rows = await self.pool.fetch(
            "SELECT customer FROM conversations WHERE status = 'handoff'"
            " AND COALESCE((state::jsonb->>'handoff_at')::double precision, 0) < $1 ORDER BY handoff_at",
            before,
        )
        return [str(r[0]) for r in rows]

    async def last_inbound(self, customer: str) -> float | None:
        at = await self.pool.fetchval(
            "SELECT received_at FROM inbox WHERE customer = $1 AND message_id NOT LIKE 'wabot:start:%'"
            " ORDER BY seq DESC LIMIT 1", customer
        )
        return None if at is None else float(at)

    async def count_status(self, status: Status) -> int:
        return int(await self.pool.fetchval("SELECT COUNT(*) FROM conversations WHERE status = $1", status))

    async def set_opted_out(
        self, customer: str, opted_out: bool, *, now: float, events: Iterable[tuple[str, dict[str, Any]]] = ()
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await pgapi.add_events(conn, customer, events, now)
            await conn.execute(
                "INSERT INTO conversations (customer, state, opted_out_at, updated_at) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (customer) DO UPDATE SET opted_out_at = excluded.opted_out_at",
                customer, State().to_json(), now if opted_out else None, now,
            )

    async def opted_out(self, customer: str) -> bool:
        at = await self.pool.fetchval("SELECT opted_out_at FROM conversations WHERE customer = $1", customer)
        return at is not None

    # --- history ------------------------------------------------------------------------------

    async def history(self, customer: str | None = None, *, limit: int = 0) -> list[tuple[Any, ...]]:
        """Inbound and outbound messages, oldest first: (customer, at, "in"|"out", payload, status, error)."""
        where = "WHERE customer = $1" if customer is not None else ""
        args: tuple[Any, ...] = (customer,) if customer is not None else ()
        sql = (
            f"SELECT customer, received_at AS at, 'in' AS dir, message AS payload,"
            f" CASE done WHEN 1 THEN 'done' ELSE 'pending' END AS status, NULL AS error, seq AS n FROM inbox {where}"
            f" UNION ALL SELECT customer, created_at, 'out', body, status, error, id FROM outbox {where}"
        )
        if limit:
            sql = f"SELECT * FROM ({sql} ORDER BY at DESC, n DESC LIMIT {int(limit)}) AS recent"
        sql += " ORDER BY customer, at, n"
        return [tuple(r)[:6] for r in await self.pool.fetch(sql, *args)]

    async def customers_like(self, pattern: str, *, limit: int = 10) -> list[str]:
        """Customers whose number matches the GLOB `pattern` (history.number_pattern makes one; digits, * and ?)."""
        like = pattern.replace("*", "%").replace("?", "_")
        rows = await self.pool.fetch(
            "SELECT customer FROM conversations WHERE customer LIKE $1 UNION SELECT customer FROM inbox"
            " WHERE customer LIKE $1 UNION SELECT customer FROM outbox WHERE customer LIKE $1 ORDER BY 1 LIMIT $2",
            like, limit,
        )
        return [str(r[0]) for r in rows]

    async def purge(self, *, before: float, batch: int = PURGE_BATCH) -> int:
        """Forget finished history older than `before`, `batch` rows a transaction; return rows deleted.

        Short transactions: no row lock held for the whole purge (a status arriving for an old reply would
        wait on it), and the loop's other queries get the pool between two batches (issue 15).
        """
        total = 0
        for sql, cutoff in (
            ("DELETE FROM inbox WHERE seq IN (SELECT seq FROM inbox WHERE done = 1 AND received_at < $1 LIMIT $2)",
             before),
            ("DELETE FROM outbox WHERE id IN"
             " (SELECT id FROM outbox WHERE status != 'queued' AND updated_at < $1 LIMIT $2)", before),
            # Meta's timestamps are whole seconds (BIGINT): t < before exactly when t < ceil(before)
            ("DELETE FROM statuses WHERE ctid = ANY(ARRAY(SELECT ctid FROM statuses WHERE timestamp < $1 LIMIT $2))",
             math.ceil(before)),
        ):
            while (removed := _count(await self.pool.execute(sql, cutoff, batch))) == batch:
                total += removed
                await asyncio.sleep(PURGE_PAUSE)
            total += removed
        return total

    # --- outbox -------------------------------------------------------------------------------

    async def queued(self, customer: str | None = None) -> list[OutRow]:
        """Every outgoing message not yet accepted by Meta, oldest first (to one customer, when given)."""
        if customer is None:
            rows = await self.pool.fetch(
                "SELECT id, customer, body, attempts, once FROM outbox WHERE status = 'queued' ORDER BY id"
            )
        else:
            rows = await self.pool.fetch(
                "SELECT id, customer, body, attempts, once FROM outbox WHERE customer = $1 AND status = 'queued'"
                " ORDER BY id", customer,
            )
        return [OutRow(int(i), c, json.loads(b), int(a), b, bool(once)) for i, c, b, a, once in rows]

    async def oldest_queued(self) -> float | None:
        at = await self.pool.fetchval("SELECT created_at FROM outbox WHERE status = 'queued' ORDER BY id LIMIT 1")
        return float(at) if at is not None else None

    async def mark_sent(self, row_id: int, *, wamid: str, now: float) -> None:
        await self.mark_sent_many([(wamid, now, row_id)])

    async def mark_sent_many(self, sent: list[tuple[str, float, int]]) -> None:
        """(wamid, when, outbox id) for several replies, in one commit."""
        async with self.quick.acquire() as conn, conn.transaction():
            await conn.executemany(
                "UPDATE outbox SET status = 'sent', wamid = $1, attempts = attempts + 1, updated_at = $2"
                " WHERE id = $3 AND status = 'queued'",
                sent,
            )

    async def mark_dry_run(self, row_id: int, *, now: float) -> None:
        """The reply was written to the log instead of sent: status 'dry-run', in the history and the export."""
        await self.pool.execute(
            "UPDATE outbox SET status = 'dry-run', attempts = attempts + 1, updated_at = $1 WHERE id = $2",
            now, row_id,
        )

    async def mark_failed(self, row_id: int, *, code: int | None, error: str, now: float) -> None:
        await self.pool.execute(
            "UPDATE outbox SET status = 'failed', error_code = $1, error = $2, attempts = attempts + 1,"
            " updated_at = $3 WHERE id = $4",
            code, error, now, row_id,
        )

    async def mark_retry(self, row_id: int, *, code: int | None, error: str, now: float) -> None:
        await self.pool.execute(
            "UPDATE outbox SET attempts = attempts + 1, sending = 0, error_code = $1, error = $2, updated_at = $3"
            " WHERE id = $4",
            code, error, now, row_id,
        )

    async def outbox_row(self, row_id: int) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT id, customer, status, attempts, wamid, error_code, error FROM outbox WHERE id = $1", row_id
        )
        return dict(row) if row is not None else None

    # --- several instances --------------------------------------------------------------------

    async def claim(self, customer: str, *, owner: str, lease: float) -> bool:
        """Take the customer for `owner` unless a live instance holds it; True when `owner` holds it now."""
        got = await self.quick.fetchval(
            f"INSERT INTO claims (customer, owner, until) VALUES ($1, $2, {pgsql.NOW} + $3)"
            " ON CONFLICT (customer) DO UPDATE SET owner = excluded.owner, until = excluded.until"
            f" WHERE claims.owner = excluded.owner OR claims.until < {pgsql.NOW} RETURNING 1",
            customer, owner, lease,
        )
        return got is not None

    async def release(self, customer: str, *, owner: str) -> bool:
        """Give the customer up when nothing of theirs waits (no inbound to process, no reply to send)."""
        gone = await self.quick.fetchval(
            "DELETE FROM claims WHERE customer = $1 AND owner = $2"
            " AND NOT EXISTS (SELECT 1 FROM inbox WHERE customer = $1 AND done = 0)"
            " AND NOT EXISTS (SELECT 1 FROM outbox WHERE customer = $1 AND status = 'queued') RETURNING 1",
            customer, owner,
        )
        return gone is not None

    async def heartbeat(self, *, owner: str, lease: float) -> int:
        """Renew `owner`'s leases and its sign of life; return how many instances are alive."""
        alive, _ = await self.renew(owner=owner, lease=lease)
        return alive

    async def renew(self, *, owner: str, lease: float) -> tuple[int, frozenset[str]]:
        """Renew `owner`'s leases and its sign of life: (instances alive, customers `owner` still holds)."""
        async with self.quick.acquire() as conn, conn.transaction():
            held = await conn.fetch(
                f"UPDATE claims SET until = {pgsql.NOW} + $2 WHERE owner = $1 RETURNING customer", owner, lease
            )
            await conn.execute(
                f"INSERT INTO instances (id, seen_at) VALUES ($1, {pgsql.NOW})"
                " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at", owner,
            )
            await conn.execute(f"DELETE FROM instances WHERE seen_at < {pgsql.NOW} - 10 * $1::float8", lease)
            alive = await conn.fetchval(ALIVE, lease)
        return max(1, int(alive)), frozenset(str(r[0]) for r in held)

    async def alive(self, *, lease: float) -> int:
        """How many instances gave a sign of life within `lease` seconds (at least this one)."""
        return max(1, int(await self.quick.fetchval(ALIVE, lease)))

    async def orphans(self, *, limit: int = 1000) -> list[str]:
        """Customers with work waiting that no live instance holds (their owner died, or none took them)."""
        rows = await self.pool.fetch(
            "SELECT customer FROM (SELECT customer FROM inbox WHERE done = 0"
            " UNION SELECT customer FROM outbox WHERE status = 'queued') AS waiting"
            f" WHERE NOT EXISTS (SELECT 1 FROM claims c WHERE c.customer = waiting.customer AND c.until >= {pgsql.NOW})"
            " LIMIT $1", limit,
        )
        return [r[0] for r in rows]

    async def leave(self, *, owner: str) -> None:
        """A clean stop: give up every claim at once, so the others need not wait for the leases."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM claims WHERE owner = $1", owner)
            await conn.execute("DELETE FROM instances WHERE id = $1", owner)

    async def notify(self, message: str) -> None:
        """Tell every instance listening on this database (LISTEN/NOTIFY; at most 8,000 bytes)."""
        await self.pool.execute("SELECT pg_notify($1, $2)", CHANNEL, message)

    async def listen(self, callback: Callable[[str], None]) -> Callable[[], Awaitable[None]]:
        """Call `callback` with each notice; return the coroutine function that stops listening."""
        conn: asyncpg.Connection = await asyncpg.connect(self.url)

        def heard(_conn: object, _pid: int, _channel: str, payload: object) -> None:
            callback(str(payload))

        await conn.add_listener(CHANNEL, heard)

        async def stop() -> None:
            await conn.close()

        return stop


def _count(tag: str) -> int:
    """Rows touched, from a command tag such as 'DELETE 3'."""
    last = tag.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _contact(c: inbound.Customer) -> str:
    return json.dumps({"wa_id": c.wa_id, "user_id": c.user_id, "name": c.name}, ensure_ascii=False)


def _err(e: inbound.ErrorInfo) -> dict[str, Any]:
    return {"code": e.code, "title": e.title, "message": e.message, "details": e.details}
