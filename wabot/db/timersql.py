"""Flow timers on SQLite (reminders, timeouts, waits): kept in the turn's commit, claimed when due, shown later.

A timer row is `pending` until its turn commits it `fired` (with a note: what it did), or a later turn cancels
it (`cancelled`, with the reason). The scheduler claims due rows (owner, until) before it hands them to the
dispatcher, so a timer is handed over once per claim; the turn checks it is still pending before it runs.
The same queries exist for PostgreSQL in pgtimers.py (migration 6 on both).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wabot.state import CancelTimers, SetTimer, TimerChange, TimerKind

MIGRATION = """
    CREATE TABLE timers (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        customer TEXT NOT NULL,
        kind TEXT NOT NULL,
        flow TEXT NOT NULL,
        step TEXT NOT NULL,
        n INTEGER NOT NULL DEFAULT 1,
        data TEXT,
        due REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        note TEXT,
        owner TEXT,
        until REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX timers_due ON timers (due) WHERE status = 'pending';
    CREATE INDEX timers_customer ON timers (customer, id);
"""

Fired = tuple[int, str]  # (timer id, what it did): the timer a turn handled, marked fired in the turn's commit


@dataclass(frozen=True, slots=True)
class TimerRow:
    """A due timer claimed for firing."""

    id: int
    customer: str
    kind: TimerKind
    flow: str
    step: str
    n: int
    data: dict[str, Any] | None
    due: float


def rows_of(raw: Iterable[tuple[Any, ...]]) -> list[TimerRow]:
    return [TimerRow(int(i), str(c), k, str(f), str(s), int(n), json.loads(d) if d else None, float(due))
            for i, c, k, f, s, n, d, due in raw]


def apply(conn: sqlite3.Connection, customer: str, changes: Iterable[TimerChange], fired: Fired | None,
          now: float) -> None:
    """Inside the caller's transaction: mark the fired timer, then cancel and set as the turn said, in order."""
    if fired is not None:
        conn.execute("UPDATE timers SET status = 'fired', note = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
                     (fired[1], now, fired[0]))
    for change in changes:
        if isinstance(change, CancelTimers):
            marks = ",".join("?" * len(change.kinds))
            conn.execute(f"UPDATE timers SET status = 'cancelled', note = ?, updated_at = ? WHERE customer = ?"
                         f" AND status = 'pending' AND kind IN ({marks}) AND flow = coalesce(?, flow)",
                         (change.reason, now, customer, *change.kinds, change.flow))
        else:
            conn.execute(
                "INSERT INTO timers (customer, kind, flow, step, n, data, due, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (customer, *_values(change), now, now))


def _values(t: SetTimer) -> tuple[Any, ...]:
    data = json.dumps(dict(t.data), ensure_ascii=False, default=str) if t.data is not None else None
    return t.kind, t.flow, t.step, t.n, data, t.due


def claim(conn: sqlite3.Connection, owner: str, now: float, until: float, limit: int) -> list[TimerRow]:
    """Take up to `limit` due timers nobody holds (or whose holder's claim ran out), oldest due first."""
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(
            "UPDATE timers SET owner = ?, until = ? WHERE id IN (SELECT id FROM timers WHERE status = 'pending'"
            " AND due <= ? AND (until IS NULL OR until < ?) ORDER BY due LIMIT ?)"
            " RETURNING id, customer, kind, flow, step, n, data, due", (owner, until, now, now, limit)).fetchall()
    return sorted(rows_of(rows), key=lambda t: (t.due, t.id))


def next_due(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT min(due) FROM timers WHERE status = 'pending'").fetchone()
    return None if row is None or row[0] is None else float(row[0])


def pending(conn: sqlite3.Connection, timer: int) -> bool:
    return conn.execute("SELECT 1 FROM timers WHERE id = ? AND status = 'pending'", (timer,)).fetchone() is not None


def unclaim(conn: sqlite3.Connection) -> int:
    """Start-up of the one server of this file: claims left by a killed process are void; due timers fire now."""
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        return conn.execute("UPDATE timers SET owner = NULL, until = NULL WHERE status = 'pending'"
                            " AND owner IS NOT NULL").rowcount


def of_customer(conn: sqlite3.Connection, customer: str, limit: int) -> list[dict[str, Any]]:
    """The customer's timers, newest first: pending ones, and what the others did (fired, cancelled)."""
    rows = conn.execute(
        "SELECT id, kind, flow, step, n, due, status, note, created_at, updated_at FROM timers WHERE customer = ?"
        " ORDER BY id DESC LIMIT ?", (customer, limit)).fetchall()
    return [as_dict(r) for r in rows]


def as_dict(row: Iterable[Any]) -> dict[str, Any]:
    keys = ("id", "kind", "flow", "step", "n", "due", "status", "note", "created_at", "updated_at")
    return dict(zip(keys, row, strict=True))
