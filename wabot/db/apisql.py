"""The business API's queries (keys, idempotent sends, events to the shop), as plain functions like sql.py's."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from wabot.db import codec
from wabot.db.areas import EventRow
from wabot.db.sql import Row, _queue, start, transaction

__all__ = [
    "add_key", "dead_events", "due_events", "event_delivered", "event_failed", "key_name", "keys", "message",
    "next_event_at", "remember", "remembered", "retry_event", "revoke_key", "send", "start_flow",
]


# --- keys -------------------------------------------------------------------------------------


def add_key(conn: sqlite3.Connection, name: str, digest: str, now: float) -> bool:
    """Store a key's hash under `name`; False when a key of that name exists (even revoked)."""
    with transaction(conn):
        row = conn.execute(
            "INSERT INTO api_keys (name, hash, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING name",
            (name, digest, now),
        ).fetchone()
    return row is not None


def key_name(conn: sqlite3.Connection, digest: str) -> str | None:
    row = conn.execute("SELECT name FROM api_keys WHERE hash = ? AND revoked_at IS NULL", (digest,)).fetchone()
    return None if row is None else str(row[0])


def keys(conn: sqlite3.Connection) -> list[tuple[str, float, float | None]]:
    return [(str(n), float(c), r) for n, c, r in conn.execute(
        "SELECT name, created_at, revoked_at FROM api_keys ORDER BY created_at")]


def revoke_key(conn: sqlite3.Connection, name: str, now: float) -> bool:
    with transaction(conn):
        return conn.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (now, name)
        ).rowcount == 1


# --- sends ------------------------------------------------------------------------------------


def remembered(conn: sqlite3.Connection, api_key: str, idempotency_key: str) -> tuple[str, int, Any] | None:
    """The request fingerprint, status and answer kept for an Idempotency-Key, if that key was used before."""
    row = conn.execute(
        "SELECT fingerprint, status, response FROM api_requests WHERE api_key = ? AND idempotency_key = ?",
        (api_key, idempotency_key),
    ).fetchone()
    return None if row is None else (str(row[0]), int(row[1]), json.loads(row[2]))


KEEP = ("INSERT INTO api_requests (api_key, idempotency_key, fingerprint, status, response, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)")


def remember(conn: sqlite3.Connection, api_key: str, idempotency_key: str, fingerprint: str, status: int,
             answer: Any, now: float) -> None:
    with transaction(conn):
        conn.execute(KEEP + " ON CONFLICT DO NOTHING",
                     (api_key, idempotency_key, fingerprint, status, json.dumps(answer), now))


def _seen(conn: sqlite3.Connection, idempotency: tuple[str, str, str] | None) -> tuple[str, int, Any] | None:
    """What a request with this Idempotency-Key (api key, key, fingerprint) was answered before, if it was."""
    return None if idempotency is None else remembered(conn, idempotency[0], idempotency[1])


def _keep(conn: sqlite3.Connection, idempotency: tuple[str, str, str] | None, answer: Any, now: float) -> None:
    """Keep the 202 answer for the request's Idempotency-Key, in the caller's transaction."""
    if idempotency is not None:
        conn.execute(KEEP, (*idempotency, 202, json.dumps(answer), now))


def send(
    conn: sqlite3.Connection, customer: str, body: dict[str, Any], now: float,
    idempotency: tuple[str, str, str] | None,
) -> tuple[Row | None, int, Any]:
    """Queue one message and keep the answer for its Idempotency-Key (api key, key, fingerprint), in one commit.

    Returns (the queued row, or None when the key was used before; the status; the answer).
    """
    with transaction(conn):
        if (seen := _seen(conn, idempotency)) is not None:
            return None, seen[1], seen[2]
        row = _queue(conn, customer, [body], None, now)[0]
        answer = {"id": str(row[0]), "status": "queued"}
        _keep(conn, idempotency, answer, now)
    return row, 202, answer


def start_flow(
    conn: sqlite3.Connection, started: codec.Started, answer: Any, now: float,
    idempotency: tuple[str, str, str] | None,
) -> tuple[int | None, int, Any]:
    """Keep a flow start in the inbox and the answer for its Idempotency-Key, in one commit (before the 202).

    Returns (the inbox seq, or None when the key was used before; the status; the answer).
    """
    with transaction(conn):
        if (seen := _seen(conn, idempotency)) is not None:
            return None, seen[1], seen[2]
        seq = start(conn, started, now)
        _keep(conn, idempotency, answer, now)
    return seq, 202, answer


def message(conn: sqlite3.Connection, row_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT id, customer, status, wamid, error_code, error, created_at, updated_at FROM outbox WHERE id = ?",
        (row_id,),
    ).fetchone()
    if row is None:
        return None
    keys = ("id", "to", "status", "wamid", "error_code", "error", "created_at", "updated_at")
    return dict(zip(keys, row, strict=True))


# --- events -----------------------------------------------------------------------------------

def due_events(conn: sqlite3.Connection, now: float, lease: float, limit: int) -> list[EventRow]:
    """Claim each customer's oldest pending event whose time has come: not due again for `lease` seconds."""
    with transaction(conn):
        rows = conn.execute(
            "SELECT e.id, e.customer, e.kind, e.data, e.attempts, e.created_at FROM events e"
            " WHERE e.status = 'pending' AND e.next_at <= ?"
            " AND e.id = (SELECT MIN(id) FROM events WHERE customer = e.customer AND status = 'pending')"
            " ORDER BY e.id LIMIT ?",
            (now, limit),
        ).fetchall()
        conn.executemany("UPDATE events SET next_at = ? WHERE id = ?", [(now + lease, r[0]) for r in rows])
    return [(int(i), c, k, d, int(a), float(t)) for i, c, k, d, a, t in rows]


def next_event_at(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT MIN(next_at) FROM events WHERE status = 'pending'").fetchone()
    return None if row is None or row[0] is None else float(row[0])


def event_delivered(conn: sqlite3.Connection, event_id: int, now: float) -> None:
    with transaction(conn):
        conn.execute(
            "UPDATE events SET status = 'delivered', attempts = attempts + 1, error = NULL, updated_at = ?"
            " WHERE id = ?", (now, event_id))


def unclaim_events(conn: sqlite3.Connection, event_ids: list[int], now: float) -> None:
    with transaction(conn):
        conn.executemany("UPDATE events SET next_at = ? WHERE id = ? AND status = 'pending'",
                         [(now, i) for i in event_ids])


def event_failed(conn: sqlite3.Connection, event_id: int, error: str, next_at: float, dead: bool, now: float) -> None:
    with transaction(conn):
        conn.execute(
            "UPDATE events SET status = ?, attempts = attempts + 1, error = ?, next_at = ?, updated_at = ?"
            " WHERE id = ?", ("dead" if dead else "pending", error, next_at, now, event_id))


def dead_events(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, customer, kind, data, attempts, error, created_at, updated_at FROM events"
        " WHERE status = 'dead' ORDER BY id LIMIT ?", (limit,)).fetchall()
    keys = ("id", "customer", "type", "data", "attempts", "error", "created_at", "updated_at")
    return [{**dict(zip(keys, r, strict=True)), "data": json.loads(r[3])} for r in rows]


def retry_event(conn: sqlite3.Connection, event_id: int, now: float) -> bool:
    """Send a dead-lettered event again (attempts start over)."""
    with transaction(conn):
        return conn.execute(
            "UPDATE events SET status = 'pending', attempts = 0, next_at = ?, updated_at = ?"
            " WHERE id = ? AND status = 'dead'", (now, now, event_id)).rowcount == 1
