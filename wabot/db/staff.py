"""The console's queries about people: staff accounts, sign-in sessions and failures, who did what.

Plain functions over a sqlite3 connection, one transaction each, run through `Store.call` like sql.py's.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from wabot.db import sql
from wabot.db.areas import Account

__all__ = [
    "actions", "add_user", "count_users", "drop_session", "failures", "forget_failures", "new_session",
    "note_failure", "record_action", "session", "staff_reply", "user",
]



def add_user(conn: sqlite3.Connection, name: str, role: str, password: str, now: float) -> bool:
    """Create the account, or set a new password and role for an existing one; True when it is new."""
    with sql.transaction(conn):
        known = conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() is not None
        conn.execute(
            "INSERT INTO users (name, role, password, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET role = excluded.role, password = excluded.password",
            (name, role, password, now),
        )
        conn.execute("DELETE FROM sessions WHERE name = ?", (name,))  # a new password signs every device out
    return not known


def user(conn: sqlite3.Connection, name: str) -> Account | None:
    row = conn.execute("SELECT name, role, password FROM users WHERE name = ?", (name,)).fetchone()
    return (row[0], row[1], row[2]) if row else None


def count_users(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])


def new_session(conn: sqlite3.Connection, token: str, name: str, csrf: str, now: float, expires: float) -> None:
    with sql.transaction(conn):
        conn.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
        conn.execute(
            "INSERT INTO sessions (token, name, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (token, name, csrf, now, expires),
        )


def session(conn: sqlite3.Connection, token: str, now: float) -> tuple[str, str, str] | None:
    """(name, role, csrf token) of a live session, or None when it is unknown or expired."""
    row = conn.execute(
        "SELECT s.name, u.role, s.csrf FROM sessions s JOIN users u ON u.name = s.name"
        " WHERE s.token = ? AND s.expires_at > ?",
        (token, now),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


def drop_session(conn: sqlite3.Connection, token: str) -> None:
    with sql.transaction(conn):
        conn.execute("DELETE FROM sessions WHERE token = ?", (token,))


def note_failure(conn: sqlite3.Connection, name: str, now: float) -> None:
    with sql.transaction(conn):
        conn.execute("DELETE FROM sign_in_failures WHERE at < ?", (now - 86400,))  # only the last day matters
        conn.execute("INSERT INTO sign_in_failures (name, at) VALUES (?, ?)", (name, now))


def failures(conn: sqlite3.Connection, name: str, since: float) -> tuple[int, float | None]:
    """How many failed sign-ins for `name` since then, and the latest one's time."""
    row = conn.execute("SELECT COUNT(*), MAX(at) FROM sign_in_failures WHERE name = ? AND at >= ?",
                       (name, since)).fetchone()
    return int(row[0]), (float(row[1]) if row[1] is not None else None)


def forget_failures(conn: sqlite3.Connection, name: str) -> None:
    with sql.transaction(conn):
        conn.execute("DELETE FROM sign_in_failures WHERE name = ?", (name,))


def record_action(conn: sqlite3.Connection, name: str, action: str, customer: str, detail: str | None,
                  now: float) -> None:
    with sql.transaction(conn):
        conn.execute("INSERT INTO staff_actions (at, name, action, customer, detail) VALUES (?, ?, ?, ?, ?)",
                     (now, name, action, customer, detail))


def staff_reply(conn: sqlite3.Connection, name: str, customer: str, body: dict[str, Any], now: float,
                action: str) -> list[sql.Row]:
    """Queue a person's message (text or template) and record who sent it, in one commit."""
    with sql.transaction(conn):
        rows = sql._queue(conn, customer, [body], None, now)
        conn.executemany("UPDATE outbox SET agent = ? WHERE id = ?", [(name, r[0]) for r in rows])
        conn.execute("INSERT INTO staff_actions (at, name, action, customer, detail) VALUES (?, ?, ?, ?, ?)",
                     (now, name, action, customer, str(rows[0][0]) if rows else None))
    return rows


def actions(conn: sqlite3.Connection, customer: str, limit: int = 20) -> list[tuple[float, str, str]]:
    """The latest things people did in a conversation: (when, who, what), newest first."""
    rows = conn.execute("SELECT at, name, action FROM staff_actions WHERE customer = ? ORDER BY id DESC LIMIT ?",
                        (customer, limit)).fetchall()
    return [(float(a), n, act) for a, n, act in rows]
