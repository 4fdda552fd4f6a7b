"""The web console's data on PostgreSQL (db/areas.py ConsoleData): the twin of staff.py and reports.py.

A name is searched by a regular expression where SQLite uses GLOB (each letter a class of its cases and diacritics),
saved variables by ILIKE where SQLite's LIKE ignores the case of ASCII letters, so both find the same customers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from wabot.db.areas import Account, Found
from wabot.db.pgapi import queue
from wabot.db.reports import number_forms
from wabot.db.rows import OutRow
from wabot.text import loose

__all__ = ["PgConsole"]


class PgConsole:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # --- people ---------------------------------------------------------------------------------

    async def add_user(self, name: str, role: str, password: str, *, now: float) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            known = await conn.fetchval("SELECT 1 FROM users WHERE name = $1 FOR UPDATE", name)
            await conn.execute(
                "INSERT INTO users (name, role, password, created_at) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (name) DO UPDATE SET role = excluded.role, password = excluded.password",
                name, role, password, now,
            )
            await conn.execute("DELETE FROM sessions WHERE name = $1", name)  # a new password signs every device out
        return known is None

    async def user(self, name: str) -> Account | None:
        row = await self.pool.fetchrow("SELECT name, role, password FROM users WHERE name = $1", name)
        return (row[0], row[1], row[2]) if row else None

    async def count_users(self) -> int:
        return int(await self.pool.fetchval("SELECT COUNT(*) FROM users"))

    async def new_session(self, token: str, name: str, csrf: str, *, now: float, expires: float) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM sessions WHERE expires_at < $1", now)
            await conn.execute(
                "INSERT INTO sessions (token, name, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                token, name, csrf, now, expires,
            )

    async def session(self, token: str, *, now: float) -> tuple[str, str, str] | None:
        row = await self.pool.fetchrow(
            "SELECT s.name, u.role, s.csrf FROM sessions s JOIN users u ON u.name = s.name"
            " WHERE s.token = $1 AND s.expires_at > $2", token, now,
        )
        return (row[0], row[1], row[2]) if row else None

    async def drop_session(self, token: str) -> None:
        await self.pool.execute("DELETE FROM sessions WHERE token = $1", token)

    async def note_failure(self, name: str, *, now: float) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM sign_in_failures WHERE at < $1", now - 86400)  # only the last day matters
            await conn.execute("INSERT INTO sign_in_failures (name, at) VALUES ($1, $2)", name, now)

    async def failures(self, name: str, *, since: float) -> tuple[int, float | None]:
        row = await self.pool.fetchrow(
            "SELECT COUNT(*), MAX(at) FROM sign_in_failures WHERE name = $1 AND at >= $2", name, since
        )
        assert row is not None  # an aggregate always has its row
        return int(row[0]), (float(row[1]) if row[1] is not None else None)

    async def forget_failures(self, name: str) -> None:
        await self.pool.execute("DELETE FROM sign_in_failures WHERE name = $1", name)

    async def record_action(self, name: str, action: str, customer: str, detail: str | None, *, now: float) -> None:
        await self.pool.execute(
            "INSERT INTO staff_actions (at, name, action, customer, detail) VALUES ($1, $2, $3, $4, $5)",
            now, name, action, customer, detail,
        )

    async def staff_reply(self, name: str, customer: str, body: dict[str, Any], *, now: float,
                          action: str) -> list[OutRow]:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await queue(conn, customer, [body], None, now, agent=name)
            await conn.execute(
                "INSERT INTO staff_actions (at, name, action, customer, detail) VALUES ($1, $2, $3, $4, $5)",
                now, name, action, customer, str(rows[0].id) if rows else None,
            )
        return rows

    async def actions(self, customer: str, limit: int = 20) -> list[tuple[float, str, str]]:
        rows = await self.pool.fetch(
            "SELECT at, name, action FROM staff_actions WHERE customer = $1 ORDER BY id DESC LIMIT $2", customer, limit
        )
        return [(float(a), n, act) for a, n, act in rows]

    # --- conversations --------------------------------------------------------------------------

    async def search(self, query: str, limit: int = 50) -> list[Found]:
        columns = "customer, contact, status, state, updated_at, opted_out_at"
        query = query.strip()
        if not query:
            rows = await self.pool.fetch(f"SELECT {columns} FROM conversations ORDER BY updated_at DESC LIMIT $1",
                                         limit)
        elif (number := number_forms(query)) is not None:
            rows = await self.pool.fetch(f"SELECT {columns} FROM conversations WHERE customer LIKE $1"
                                         " ORDER BY updated_at DESC LIMIT $2", f"%{number}%", limit)
        else:
            like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            # the name forgiving case and diacritics, in state only the saved variables, as reports.search
            name = "".join(f"[{c}]" if len(c) > 1 else re.escape(c) for c in loose(query))
            rows = await self.pool.fetch(
                f"SELECT {columns} FROM conversations WHERE contact ~ $1 OR state ILIKE $2"
                " ORDER BY updated_at DESC LIMIT $3", f'"name": "[^"]*{name}', f'%"vars": {like}"stack": %', limit,
            )
        found: list[Found] = []
        for customer, contact, status, state, updated, opted in rows:
            s = json.loads(state)
            found.append((customer, json.loads(contact or "{}").get("name"), status, s.get("flow", ""),
                          s.get("step", ""), float(updated), opted is not None))
        return found

    async def messages(self, customer: str, limit: int) -> list[tuple[Any, ...]]:
        rows = await self.pool.fetch(
            "SELECT * FROM (SELECT received_at AS at, 'in' AS dir, message, 'done' AS status, NULL AS error,"
            " NULL AS agent, seq AS n FROM inbox WHERE customer = $1 UNION ALL SELECT created_at, 'out', body,"
            " status, error, agent, id FROM outbox WHERE customer = $1 ORDER BY at DESC, n DESC LIMIT $2) AS recent"
            " ORDER BY at, n", customer, limit,
        )
        return [tuple(r) for r in rows]

    async def media(self, media_id: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT message FROM inbox WHERE strpos(message, $1) > 0 ORDER BY seq DESC LIMIT 20", f'"{media_id}"'
        )
        return [str(r[0]) for r in rows]

    # --- numbers --------------------------------------------------------------------------------

    async def record_turns(self, turns: Iterable[tuple[str, str, str, bool, str, float]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for customer, flow, step, missed, text, at in turns:
                if flow:
                    await conn.execute("INSERT INTO visits (customer, flow, step, at) VALUES ($1, $2, $3, $4)"
                                       " ON CONFLICT (flow, step, customer) DO UPDATE SET at = excluded.at",
                                       customer, flow, step, at)
                    await conn.execute("INSERT INTO stops (customer, flow, step, at) VALUES ($1, $2, $3, $4)"
                                       " ON CONFLICT (customer) DO UPDATE SET flow = excluded.flow,"
                                       " step = excluded.step, at = excluded.at", customer, flow, step, at)
                else:
                    await conn.execute("DELETE FROM stops WHERE customer = $1", customer)
                if missed and text.strip():
                    await conn.execute("INSERT INTO misses (customer, flow, step, text, at)"
                                       " VALUES ($1, $2, $3, $4, $5)", customer, flow, step, text.strip()[:500], at)

    async def by_day(self, since: float, offset: float, days: int) -> list[tuple[str, int, int]]:
        first = (since + offset) // 86400 * 86400 - offset  # midnight, local time
        out: list[tuple[str, int, int]] = []
        async with self.pool.acquire() as conn:
            for n in range(days, -1, -1):
                start = first + n * 86400
                counted = await conn.fetchrow(
                    "SELECT (SELECT COUNT(*) FROM inbox WHERE received_at >= $1 AND received_at < $2 AND done = 1),"
                    " (SELECT COUNT(*) FROM outbox WHERE created_at >= $1 AND created_at < $2)", start, start + 86400,
                )
                assert counted is not None
                got_in, got_out = counted
                if got_in or got_out:
                    day = datetime.fromtimestamp(start + offset, UTC).date().isoformat()
                    out.append((day, int(got_in), int(got_out)))
        return out

    async def overview(self, now: float, active_within: float) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            "SELECT (SELECT COUNT(*) FROM conversations WHERE updated_at >= $2 AND status != 'idle'),"
            " (SELECT COUNT(*) FROM conversations WHERE status = 'handoff'),"
            " (SELECT MIN(handoff_at) FROM conversations WHERE status = 'handoff'),"
            " (SELECT AVG($1 - handoff_at) FROM conversations WHERE status = 'handoff'),"
            " (SELECT COUNT(*) FROM conversations),"
            " (SELECT COUNT(*) FROM staff_actions WHERE action = 'resume')", now, now - active_within,
        )
        assert row is not None
        active, waiting, oldest, average, total, handed = row
        return {"active": int(active), "waiting": int(waiting), "longest_wait": now - oldest if oldest else 0.0,
                "average_wait": float(average or 0.0), "conversations": int(total), "given_back": int(handed)}

    async def failed_replies(self, limit: int = 20) -> list[tuple[int | None, str, int]]:
        rows = await self.pool.fetch(
            "SELECT error_code, COALESCE(error, '?'), COUNT(*) FROM outbox WHERE status = 'failed'"
            " GROUP BY 1, 2 ORDER BY 3 DESC LIMIT $1", limit,
        )
        return [(code, reason, int(n)) for code, reason, n in rows]

    async def funnel(self) -> dict[tuple[str, str], tuple[int, int]]:
        reached = {(f, s): int(n) for f, s, n in await self.pool.fetch("SELECT flow, step, COUNT(*) FROM visits"
                                                                       " GROUP BY 1, 2")}
        stopped = {(f, s): int(n) for f, s, n in await self.pool.fetch("SELECT flow, step, COUNT(*) FROM stops"
                                                                       " GROUP BY 1, 2")}
        return {k: (reached.get(k, 0), stopped.get(k, 0)) for k in reached.keys() | stopped.keys()}

    async def not_understood(self, limit: int = 50) -> list[tuple[str, int, str]]:
        rows = await self.pool.fetch(
            "SELECT MAX(text), COUNT(*), MAX(flow || '/' || step) FROM misses GROUP BY lower(text)"
            " ORDER BY 2 DESC, MAX(id) DESC LIMIT $1", limit,
        )
        return [(t, int(n), where) for t, n, where in rows]
