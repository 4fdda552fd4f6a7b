"""The business API's data on PostgreSQL (db/areas.py ApiData): the twin of apisql.py.

Several instances share these tables. A retried request with the same Idempotency-Key on two instances at
once queues one message: the first transaction's row in api_requests makes the second wait, then see it.
An event is claimed for a lease before it is delivered (`due_events`), so two instances never deliver the
same event at once, and a customer's next event waits until the one before it is delivered or dead.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from wabot.db import codec
from wabot.db.areas import Event, EventRow
from wabot.db.rows import OutRow

__all__ = ["Conn", "PgApi", "add_events", "queue"]

Conn = asyncpg.Connection | PoolConnectionProxy  # a connection, or one lent by the pool


class PgApi:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # --- keys -----------------------------------------------------------------------------------

    async def add_key(self, name: str, digest: str, *, now: float) -> bool:
        added = await self.pool.fetchval(
            "INSERT INTO api_keys (name, hash, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING name",
            name, digest, now,
        )
        return added is not None

    async def key_name(self, digest: str) -> str | None:
        name = await self.pool.fetchval("SELECT name FROM api_keys WHERE hash = $1 AND revoked_at IS NULL", digest)
        return None if name is None else str(name)

    async def keys(self) -> list[tuple[str, float, float | None]]:
        rows = await self.pool.fetch("SELECT name, created_at, revoked_at FROM api_keys ORDER BY created_at")
        return [(str(n), float(c), r) for n, c, r in rows]

    async def revoke_key(self, name: str, *, now: float) -> bool:
        done = await self.pool.fetchval(
            "UPDATE api_keys SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL RETURNING 1", now, name
        )
        return done is not None

    # --- sends ----------------------------------------------------------------------------------

    async def remembered(self, api_key: str, idempotency_key: str) -> tuple[str, int, Any] | None:
        return await _remembered(self.pool, api_key, idempotency_key)

    async def remember(self, api_key: str, idempotency_key: str, fingerprint: str, *, status: int, answer: Any,
                       now: float) -> None:
        await self.pool.execute(
            "INSERT INTO api_requests (api_key, idempotency_key, fingerprint, status, response, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            api_key, idempotency_key, fingerprint, status, json.dumps(answer), now,
        )

    async def send(
        self, customer: str, body: dict[str, Any], *, now: float, idempotency: tuple[str, str, str] | None
    ) -> tuple[OutRow | None, int, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            if idempotency is not None and (seen := await _first(conn, idempotency, now)) is not None:
                return None, seen[1], seen[2]
            row = (await queue(conn, customer, [body], None, now))[0]
            answer = {"id": str(row.id), "status": "queued"}
            if idempotency is not None:
                await _answered(conn, idempotency, answer)
        return row, 202, answer

    async def start_flow(
        self, started: codec.Started, *, answer: Any, now: float, idempotency: tuple[str, str, str] | None
    ) -> tuple[int | None, int, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            if idempotency is not None and (seen := await _first(conn, idempotency, now)) is not None:
                return None, seen[1], seen[2]
            seq = await conn.fetchval(
                "INSERT INTO inbox (message_id, customer, message, received_at) VALUES ($1, $2, $3, $4) RETURNING seq",
                codec.STARTED + uuid.uuid4().hex, started.customer.key, codec.dump_started(started), now,
            )
            if idempotency is not None:
                await _answered(conn, idempotency, answer)
        return int(seq), 202, answer

    async def message(self, row_id: int) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT id, customer AS to, status, wamid, error_code, error, created_at, updated_at FROM outbox"
            " WHERE id = $1", row_id,
        )
        return None if row is None else dict(row)

    # --- events ---------------------------------------------------------------------------------

    async def add_events(self, customer: str, events: Iterable[Event], *, now: float) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await add_events(conn, customer, events, now)

    async def due_events(self, *, now: float, lease: float, limit: int = 100) -> list[EventRow]:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT e.id, e.customer, e.kind, e.data, e.attempts, e.created_at FROM events e"
                " WHERE e.status = 'pending' AND e.next_at <= $1"
                " AND e.id = (SELECT MIN(id) FROM events WHERE customer = e.customer AND status = 'pending')"
                " ORDER BY e.id LIMIT $2 FOR UPDATE SKIP LOCKED",
                now, limit,
            )
            await conn.execute("UPDATE events SET next_at = $1 WHERE id = ANY($2::bigint[])",
                               now + lease, [r[0] for r in rows])
        return [(int(i), c, k, d, int(a), float(t)) for i, c, k, d, a, t in rows]

    async def next_event_at(self) -> float | None:
        at = await self.pool.fetchval("SELECT MIN(next_at) FROM events WHERE status = 'pending'")
        return None if at is None else float(at)

    async def event_delivered(self, event_id: int, *, now: float) -> None:
        await self.pool.execute(
            "UPDATE events SET status = 'delivered', attempts = attempts + 1, error = NULL, updated_at = $1"
            " WHERE id = $2", now, event_id,
        )

    async def event_failed(self, event_id: int, *, error: str, next_at: float, dead: bool, now: float) -> None:
        await self.pool.execute(
            "UPDATE events SET status = $1, attempts = attempts + 1, error = $2, next_at = $3, updated_at = $4"
            " WHERE id = $5", "dead" if dead else "pending", error, next_at, now, event_id,
        )

    async def unclaim_events(self, event_ids: list[int], *, now: float) -> None:
        await self.pool.execute("UPDATE events SET next_at = $1 WHERE id = ANY($2::bigint[]) AND status = 'pending'",
                                now, event_ids)

    async def dead_events(self, *, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT id, customer, kind AS type, data, attempts, error, created_at, updated_at FROM events"
            " WHERE status = 'dead' ORDER BY id LIMIT $1", limit,
        )
        return [{**dict(r), "data": json.loads(r["data"])} for r in rows]

    async def retry_event(self, event_id: int, *, now: float) -> bool:
        done = await self.pool.fetchval(
            "UPDATE events SET status = 'pending', attempts = 0, next_at = $1, updated_at = $1"
            " WHERE id = $2 AND status = 'dead' RETURNING 1", now, event_id,
        )
        return done is not None


async def _first(conn: Conn, idempotency: tuple[str, str, str], now: float) -> tuple[str, int, Any] | None:
    """Take the Idempotency-Key for this request, or the answer kept for it (None: the key is ours now).

    The key's row comes first: a second request with the same key waits on it until this commit, then sees it.
    """
    fresh = await conn.fetchval(
        "INSERT INTO api_requests (api_key, idempotency_key, fingerprint, status, response, created_at)"
        " VALUES ($1, $2, $3, 0, 'null', $4) ON CONFLICT DO NOTHING RETURNING 1", *idempotency, now,
    )
    if fresh is not None:
        return None
    seen = await _remembered(conn, idempotency[0], idempotency[1])
    assert seen is not None  # the row that refused ours is committed: this statement sees it
    return seen


async def _answered(conn: Conn, idempotency: tuple[str, str, str], answer: Any) -> None:
    await conn.execute(
        "UPDATE api_requests SET status = 202, response = $3 WHERE api_key = $1 AND idempotency_key = $2",
        idempotency[0], idempotency[1], json.dumps(answer),
    )


async def _remembered(conn: Conn | asyncpg.Pool, api_key: str, idempotency_key: str) -> tuple[str, int, Any] | None:
    row = await conn.fetchrow(
        "SELECT fingerprint, status, response FROM api_requests WHERE api_key = $1 AND idempotency_key = $2",
        api_key, idempotency_key,
    )
    return None if row is None else (str(row[0]), int(row[1]), json.loads(row[2]))


async def add_events(conn: Conn, customer: str, events: Iterable[Event], now: float) -> None:
    """Keep events inside the caller's transaction: the change and its events commit together."""
    rows = [(customer, kind, json.dumps(data, ensure_ascii=False, default=str), now, now, now)
            for kind, data in events]
    if rows:
        await conn.executemany(
            "INSERT INTO events (customer, kind, data, next_at, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)", rows,
        )


async def queue(conn: Conn, customer: str, bodies: list[dict[str, Any]], seq: int | None, now: float,
                *, once: bool = False, agent: str | None = None) -> list[OutRow]:
    """Queue outgoing messages inside the caller's transaction."""
    rows: list[OutRow] = []
    for body in bodies:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        row_id = await conn.fetchval(
            "INSERT INTO outbox (customer, body, inbox_seq, created_at, updated_at, once, agent)"
            " VALUES ($1, $2, $3, $4, $4, $5, $6) RETURNING id", customer, text, seq, now, int(once), agent,
        )
        rows.append(OutRow(int(row_id), customer, body, 0, text, once))
    return rows
