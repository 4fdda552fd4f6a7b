"""Flow timers on PostgreSQL: the twin of timersql.py (same table, same meaning), for several instances too.

A due timer is claimed with FOR UPDATE SKIP LOCKED, like work nobody else holds: two instances never hand the
same timer to their dispatchers at once, and a claim left by an instance that died runs out after its lease.
The turn that fires it marks it in its own commit, under the customer's claim (postgres.PgStore.finish_turn).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from wabot.db.timersql import Fired, TimerRow, as_dict, rows_of
from wabot.state import CancelTimers, TimerChange

Conn = asyncpg.Connection | PoolConnectionProxy

MIGRATION = """
    CREATE TABLE timers (
        id BIGSERIAL PRIMARY KEY,
        customer TEXT NOT NULL,
        kind TEXT NOT NULL,
        flow TEXT NOT NULL,
        step TEXT NOT NULL,
        n INTEGER NOT NULL DEFAULT 1,
        data TEXT,
        due DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        note TEXT,
        owner TEXT,
        until DOUBLE PRECISION,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX timers_due ON timers (due) WHERE status = 'pending';
    CREATE INDEX timers_customer ON timers (customer, id);
"""


async def apply(conn: Conn, customer: str, changes: Iterable[TimerChange], fired: Fired | None, now: float) -> None:
    """Inside the caller's transaction: mark the fired timer, then cancel and set as the turn said, in order."""
    if fired is not None:
        await conn.execute("UPDATE timers SET status = 'fired', note = $1, updated_at = $2"
                           " WHERE id = $3 AND status = 'pending'", fired[1], now, fired[0])
    for change in changes:
        if isinstance(change, CancelTimers):
            await conn.execute("UPDATE timers SET status = 'cancelled', note = $1, updated_at = $2"
                               " WHERE customer = $3 AND status = 'pending' AND kind = ANY($4::text[])"
                               " AND flow = coalesce($5, flow)", change.reason, now, customer, list(change.kinds),
                               change.flow)
        else:
            data = json.dumps(dict(change.data), ensure_ascii=False, default=str) if change.data is not None else None
            await conn.execute(
                "INSERT INTO timers (customer, kind, flow, step, n, data, due, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                customer, change.kind, change.flow, change.step, change.n, data, change.due, now)


async def claim(pool: asyncpg.Pool, owner: str, now: float, until: float, limit: int) -> list[TimerRow]:
    """Take up to `limit` due timers no live claim holds, oldest due first; skipped while another takes them."""
    rows = await pool.fetch(
        "UPDATE timers SET owner = $1, until = $2 WHERE id IN (SELECT id FROM timers WHERE status = 'pending'"
        " AND due <= $3 AND (until IS NULL OR until < $3) ORDER BY due LIMIT $4 FOR UPDATE SKIP LOCKED)"
        " RETURNING id, customer, kind, flow, step, n, data, due", owner, until, now, limit)
    return sorted(rows_of(tuple(r) for r in rows), key=lambda t: (t.due, t.id))


async def next_due(pool: asyncpg.Pool) -> float | None:
    at = await pool.fetchval("SELECT min(due) FROM timers WHERE status = 'pending'")
    return None if at is None else float(at)


async def pending(pool: asyncpg.Pool, timer: int) -> bool:
    return await pool.fetchval("SELECT 1 FROM timers WHERE id = $1 AND status = 'pending'", timer) is not None


async def of_customer(pool: asyncpg.Pool, customer: str, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT id, kind, flow, step, n, due, status, note, created_at, updated_at FROM timers WHERE customer = $1"
        " ORDER BY id DESC LIMIT $2", customer, limit)
    return [as_dict(tuple(r)) for r in rows]
