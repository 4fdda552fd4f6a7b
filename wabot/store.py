"""The SQLite layer: schema migrations and every query wabot makes, in one place.

Durability: WAL journal; a commit survives a crash of the process (kill -9). One
aiosqlite connection is shared, so every transaction runs under one lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from . import codec, inbound
from .state import HANDOFF, State

log = logging.getLogger(__name__)

_MIGRATIONS = [
    """
    CREATE TABLE inbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id TEXT NOT NULL UNIQUE,
        customer TEXT NOT NULL,
        message TEXT NOT NULL,
        received_at REAL NOT NULL,
        done INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX inbox_pending ON inbox (seq) WHERE done = 0;
    CREATE INDEX inbox_customer ON inbox (customer, seq);
    CREATE TABLE conversations (
        customer TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'idle',
        contact TEXT,
        handoff_reason TEXT,
        handoff_at REAL,
        opted_out_at REAL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX conversations_status ON conversations (status, handoff_at);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        customer TEXT NOT NULL,
        body TEXT NOT NULL,
        inbox_seq INTEGER,
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        wamid TEXT,
        error_code INTEGER,
        error TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX outbox_queued ON outbox (id) WHERE status = 'queued';
    CREATE INDEX outbox_wamid ON outbox (wamid);
    CREATE INDEX outbox_customer ON outbox (customer, id);
    CREATE TABLE statuses (
        wamid TEXT NOT NULL,
        status TEXT NOT NULL,
        timestamp INTEGER NOT NULL,
        recipient TEXT NOT NULL,
        errors TEXT,
        PRIMARY KEY (wamid, status)
    );
    """,
]

# A delivery status only ever moves forward (Meta may send `read` before `delivered`).
_RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 5}


@dataclass(frozen=True, slots=True)
class OutRow:
    """One queued outgoing message."""

    id: int
    customer: str
    body: dict[str, Any]
    attempts: int = 0


class Store:
    """The database. Open with `await Store.open(path)`, close with `await store.close()`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db
        self.lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        db = await aiosqlite.connect(str(path))
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA busy_timeout=5000")
        store = cls(db)
        await store._migrate()
        return store

    async def close(self) -> None:
        async with self.lock:
            await self.db.close()

    async def _migrate(self) -> None:
        async with self.db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        for n, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            await self.db.executescript(f"BEGIN; {script}; PRAGMA user_version = {n}; COMMIT;")
            log.info("database migrated to version %d", n)

    # --- inbox --------------------------------------------------------------------------------

    async def record(
        self, messages: Iterable[inbound.Message], statuses: Iterable[inbound.Status], *, now: float
    ) -> list[tuple[int, inbound.Message]]:
        """Store a webhook's messages and statuses in one commit; return the messages seen for the first time."""
        fresh: list[tuple[int, inbound.Message]] = []
        async with self.lock:
            for m in messages:
                async with self.db.execute(
                    "INSERT INTO inbox (message_id, customer, message, received_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (message_id) DO NOTHING RETURNING seq",
                    (m.id, m.customer.key, codec.dump_message(m), now),
                ) as cur:
                    row = await cur.fetchone()
                if row is not None:
                    fresh.append((int(row[0]), m))
            for s in statuses:
                await self._record_status(s, now)
            await self.db.commit()
        return fresh

    async def _record_status(self, s: inbound.Status, now: float) -> None:
        errors = json.dumps([_err(e) for e in s.errors], ensure_ascii=False) if s.errors else None
        await self.db.execute(
            "INSERT INTO statuses (wamid, status, timestamp, recipient, errors) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (s.id, s.status, s.timestamp, s.recipient_id, errors),
        )
        rank = _RANK.get(s.status)
        if rank is None:
            return
        first = s.errors[0] if s.errors else None
        await self.db.execute(
            "UPDATE outbox SET status = ?, updated_at = ?,"
            " error_code = COALESCE(?, error_code), error = COALESCE(?, error)"
            " WHERE wamid = ? AND CASE status WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2"
            " WHEN 'read' THEN 3 WHEN 'played' THEN 4 ELSE 5 END < ?",
            (
                s.status,
                now,
                first.code if first else None,
                f"{first.title}: {first.details or first.message}" if first else None,
                s.id,
                rank,
            ),
        )

    async def pending(self) -> list[tuple[int, inbound.Message]]:
        """Inbound messages stored but not yet fully processed (after a crash or restart), oldest first."""
        async with self.lock, self.db.execute(
            "SELECT seq, message FROM inbox WHERE done = 0 ORDER BY seq"
        ) as cur:
            rows = await cur.fetchall()
        return [(int(seq), codec.load_message(text)) for seq, text in rows]

    async def skip(self, seq: int, *, customer: str) -> None:
        """Give up on a message the bot could not process: mark it done and start the customer over."""
        async with self.lock:
            await self.db.execute("UPDATE inbox SET done = 1 WHERE seq = ?", (seq,))
            await self.db.execute("DELETE FROM conversations WHERE customer = ?", (customer,))
            await self.db.commit()

    # --- conversations ------------------------------------------------------------------------

    async def load_state(self, customer: str) -> State | None:
        async with self.lock, self.db.execute(
            "SELECT state FROM conversations WHERE customer = ?", (customer,)
        ) as cur:
            row = await cur.fetchone()
        return State.from_json(row[0]) if row else None

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
        async with self.lock:
            await self.db.execute(
                "INSERT INTO conversations (customer, state, status, contact, handoff_reason, handoff_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (customer) DO UPDATE SET state = excluded.state, status = excluded.status,"
                " contact = COALESCE(excluded.contact, contact),"
                " handoff_reason = CASE WHEN excluded.status = 'handoff'"
                "   THEN COALESCE(excluded.handoff_reason, handoff_reason) END,"
                " handoff_at = CASE WHEN excluded.status = 'handoff'"
                "   THEN COALESCE(handoff_at, excluded.handoff_at) END,"
                " updated_at = excluded.updated_at",
                (
                    customer,
                    state.to_json(),
                    state.status,
                    _contact(contact) if contact else None,
                    handoff,
                    now if state.status == HANDOFF else None,
                    now,
                ),
            )
            rows = await self._queue(customer, bodies, seq, now)
            if seq is not None:
                await self.db.execute("UPDATE inbox SET done = 1 WHERE seq = ?", (seq,))
            await self.db.commit()
        return rows

    async def _queue(self, customer: str, bodies: list[dict[str, Any]], seq: int | None, now: float) -> list[OutRow]:
        rows: list[OutRow] = []
        for body in bodies:
            async with self.db.execute(
                "INSERT INTO outbox (customer, body, inbox_seq, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (customer, json.dumps(body, ensure_ascii=False), seq, now, now),
            ) as cur:
                row = await cur.fetchone()
            assert row is not None
            rows.append(OutRow(int(row[0]), customer, body))
        return rows

    async def queue(self, customer: str, bodies: list[dict[str, Any]], *, now: float) -> list[OutRow]:
        """Queue messages that are not a bot turn (an agent's reply, a re-engagement template)."""
        async with self.lock:
            rows = await self._queue(customer, bodies, None, now)
            await self.db.commit()
        return rows

    async def contact(self, customer: str) -> inbound.Customer | None:
        """Who the customer is, as last seen in a message."""
        async with self.lock, self.db.execute(
            "SELECT contact FROM conversations WHERE customer = ?", (customer,)
        ) as cur:
            row = await cur.fetchone()
        if row is None or row[0] is None:
            return None
        d = json.loads(row[0])
        return inbound.Customer(d.get("wa_id"), d.get("user_id"), d.get("name"))

    async def handoffs(self) -> list[dict[str, Any]]:
        """Customers waiting for a person, longest wait first."""
        async with self.lock, self.db.execute(
            "SELECT customer, contact, handoff_reason, handoff_at FROM conversations"
            " WHERE status = 'handoff' ORDER BY handoff_at"
        ) as cur:
            rows = await cur.fetchall()
        return [
            {"customer": c, "name": json.loads(ct or "{}").get("name"), "reason": r or "", "since": at}
            for c, ct, r, at in rows
        ]

    async def count_status(self, status: str) -> int:
        async with self.lock, self.db.execute(
            "SELECT COUNT(*) FROM conversations WHERE status = ?", (status,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # --- opt-out ------------------------------------------------------------------------------

    async def set_opted_out(self, customer: str, opted_out: bool, *, now: float) -> None:
        async with self.lock:
            await self.db.execute(
                "INSERT INTO conversations (customer, state, opted_out_at, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (customer) DO UPDATE SET opted_out_at = excluded.opted_out_at",
                (customer, State().to_json(), now if opted_out else None, now),
            )
            await self.db.commit()

    async def opted_out(self, customer: str) -> bool:
        async with self.lock, self.db.execute(
            "SELECT opted_out_at FROM conversations WHERE customer = ?", (customer,)
        ) as cur:
            row = await cur.fetchone()
        return row is not None and row[0] is not None

    # --- history ------------------------------------------------------------------------------

    async def history(self, customer: str | None = None, *, limit: int = 0) -> list[tuple[Any, ...]]:
        """Inbound and outbound messages, oldest first: (customer, at, "in"|"out", payload, status, error).

        `payload` is the stored JSON text (an inbound message or an outgoing Graph body).
        With `limit`, the most recent `limit` entries.
        """
        where = "WHERE customer = ?" if customer is not None else ""
        args: tuple[Any, ...] = (customer, customer) if customer is not None else ()
        sql = (
            f"SELECT customer, received_at AS at, 'in', message, CASE done WHEN 1 THEN 'done' ELSE 'pending' END,"
            f" NULL, seq AS n FROM inbox {where}"
            f" UNION ALL SELECT customer, created_at, 'out', body, status, error, id FROM outbox {where}"
        )
        if limit:
            sql = f"SELECT * FROM ({sql} ORDER BY at DESC, n DESC LIMIT {int(limit)})"
        sql += " ORDER BY customer, at, n"
        async with self.lock, self.db.execute(sql, args) as cur:
            rows = await cur.fetchall()
        return [tuple(r[:6]) for r in rows]

    async def purge(self, *, before: float) -> int:
        """Forget finished conversation history older than `before` (the retention period); return rows deleted."""
        async with self.lock:
            total = 0
            for sql in (
                "DELETE FROM inbox WHERE done = 1 AND received_at < ?",
                "DELETE FROM outbox WHERE status != 'queued' AND updated_at < ?",
                "DELETE FROM statuses WHERE timestamp < ?",
            ):
                cur = await self.db.execute(sql, (before,))
                total += cur.rowcount
                await cur.close()
            await self.db.commit()
        return total

    # --- outbox -------------------------------------------------------------------------------

    async def queued(self) -> list[OutRow]:
        """Every outgoing message not yet accepted by Meta, oldest first."""
        async with self.lock, self.db.execute(
            "SELECT id, customer, body, attempts FROM outbox WHERE status = 'queued' ORDER BY id"
        ) as cur:
            rows = await cur.fetchall()
        return [OutRow(int(i), c, json.loads(b), int(a)) for i, c, b, a in rows]

    async def mark_sent(self, row_id: int, *, wamid: str, now: float) -> None:
        await self._update(
            "UPDATE outbox SET status = 'sent', wamid = ?, attempts = attempts + 1, updated_at = ?"
            " WHERE id = ? AND status = 'queued'",
            (wamid, now, row_id),
        )

    async def mark_failed(self, row_id: int, *, code: int | None, error: str, now: float) -> None:
        await self._update(
            "UPDATE outbox SET status = 'failed', error_code = ?, error = ?, attempts = attempts + 1,"
            " updated_at = ? WHERE id = ?",
            (code, error, now, row_id),
        )

    async def mark_retry(self, row_id: int, *, code: int | None, error: str, now: float) -> None:
        await self._update(
            "UPDATE outbox SET attempts = attempts + 1, error_code = ?, error = ?, updated_at = ? WHERE id = ?",
            (code, error, now, row_id),
        )

    async def outbox_row(self, row_id: int) -> dict[str, Any] | None:
        async with self.lock, self.db.execute(
            "SELECT id, customer, status, attempts, wamid, error_code, error FROM outbox WHERE id = ?", (row_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        keys = ("id", "customer", "status", "attempts", "wamid", "error_code", "error")
        return dict(zip(keys, row, strict=True))

    async def _update(self, sql: str, params: tuple[Any, ...]) -> None:
        async with self.lock:
            await self.db.execute(sql, params)
            await self.db.commit()


def _contact(c: inbound.Customer) -> str:
    return json.dumps({"wa_id": c.wa_id, "user_id": c.user_id, "name": c.name}, ensure_ascii=False)


def _err(e: inbound.ErrorInfo) -> dict[str, Any]:
    return {"code": e.code, "title": e.title, "message": e.message, "details": e.details}
