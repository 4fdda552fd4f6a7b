"""Every query wabot makes, as plain functions over a sqlite3 connection: one call, one transaction.

store.py runs them on the event loop (see why there).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Iterable
from typing import Any

from wabot.db import backup, codec, timersql
from wabot.db.areas import Event
from wabot.errors import DatabaseError
from wabot.state import HANDOFF, State, TimerChange
from wabot.whatsapp import inbound

log = logging.getLogger(__name__)

MIGRATIONS = [
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
    # the retention purge finds old rows by time, a batch at a time, without scanning the tables
    """
    CREATE INDEX inbox_received ON inbox (received_at) WHERE done = 1;
    CREATE INDEX outbox_updated ON outbox (updated_at) WHERE status != 'queued';
    CREATE INDEX statuses_timestamp ON statuses (timestamp);
    """,
    # the business API (wabot/api): its keys, the answers kept for Idempotency-Key, the events to the shop
    """
    CREATE TABLE api_keys (
        name TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE TABLE api_requests (
        api_key TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL,
        response TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (api_key, idempotency_key)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        customer TEXT NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL,
        error TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX events_pending ON events (customer, id) WHERE status = 'pending';
    CREATE INDEX events_status ON events (status, id);
    """,
    # campaigns: one template to many customers (wabot/db/campaignsql.py); a recipient row is queued to the
    # outbox in the same commit that records its outbox id, so a restart never queues it twice
    """
    CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        template TEXT NOT NULL,
        language TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'running',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE campaign_recipients (
        campaign INTEGER NOT NULL,
        row INTEGER NOT NULL,
        customer TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        outbox_id INTEGER,
        reason TEXT,
        PRIMARY KEY (campaign, row)
    );
    CREATE UNIQUE INDEX campaign_customer ON campaign_recipients (campaign, customer) WHERE customer != '';
    CREATE INDEX campaign_pending ON campaign_recipients (campaign, row) WHERE status = 'pending';
    -- a campaign's message is sent at most once: `sending` is committed before the Graph call, and a row found
    -- sending after a crash is not sent again (Meta may or may not have it; a duplicate promotion is worse)
    ALTER TABLE outbox ADD COLUMN once INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN sending INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: the web console: staff accounts, sign-in sessions and failures, who did what, where customers stopped
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE sessions (
        token TEXT PRIMARY KEY,
        name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE TABLE sign_in_failures (name TEXT NOT NULL, at REAL NOT NULL);
    CREATE INDEX sign_in_failures_name ON sign_in_failures (name, at);
    CREATE TABLE staff_actions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        name TEXT NOT NULL,
        action TEXT NOT NULL,
        customer TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX staff_actions_customer ON staff_actions (customer, id);
    ALTER TABLE outbox ADD COLUMN agent TEXT;
    CREATE TABLE visits (
        customer TEXT NOT NULL,
        flow TEXT NOT NULL,
        step TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (flow, step, customer)
    ) WITHOUT ROWID;
    CREATE TABLE misses (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        customer TEXT NOT NULL,
        flow TEXT NOT NULL,
        step TEXT NOT NULL,
        text TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE TABLE stops (customer TEXT PRIMARY KEY, flow TEXT NOT NULL, step TEXT NOT NULL, at REAL NOT NULL);
    CREATE INDEX stops_step ON stops (flow, step);
    CREATE INDEX conversations_updated ON conversations (updated_at);
    CREATE INDEX outbox_created ON outbox (created_at);
    CREATE INDEX outbox_failed ON outbox (error_code, error) WHERE status = 'failed';
    """,
    # 6: flow timers (reminders, timeouts, waits), kept in the commit of the turn that sets them: db/timersql.py
    timersql.MIGRATION,
    # 7: when the last re-engagement template was queued: once a day per customer, across restarts and instances
    """
    ALTER TABLE conversations ADD COLUMN reengaged_at REAL;
    """,
]

# Short, so a writer in another process (a migration, the sqlite3 shell) never freezes the event loop for
# long: Store retries a locked database after yielding to the loop instead (issue 15).
BUSY_TIMEOUT_MS = 50

# A delivery status only ever moves forward (Meta may send `read` before `delivered`).
_RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 5}
_RANK_SQL = "CASE status " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in _RANK.items()) + " ELSE 5 END"

Row = tuple[int, str, dict[str, Any], int, str]  # outbox id, customer, body, attempts, body as JSON text


def connect(path: str, *, synchronous: str = "normal") -> sqlite3.Connection:
    """Open (creating or migrating) the database; WAL, so a commit survives a killed process.

    synchronous "full" also waits for the disk at each commit, so a commit survives a power cut.
    A database that needs migrating is copied first (backup.before_migration).
    """
    conn = sqlite3.connect(path, isolation_level=None)  # explicit BEGIN/COMMIT below
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA busy_timeout=5000")  # start-up may wait for another writer; serving may not
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        conn.close()
        raise DatabaseError(newer(path, version, len(MIGRATIONS)))
    if 0 < version < len(MIGRATIONS) and path != ":memory:":
        backup.before_migration(conn, path, version)
    for n, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {n}; COMMIT;")
        log.info("database migrated to version %d", n)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def newer(where: str, found: int, known: int) -> str:
    """The sentence for a database written by a newer wabot (both stores say it the same way)."""
    return (
        f"The database {where} has schema version {found}, but this wabot knows only up to version {known}: "
        "it was written by a newer wabot. Upgrade wabot (pip install -U wabot) or point database.path/"
        "database.url at another database; nothing was changed."
    )


class transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error; inside a transaction already open (a group commit,
    db/group.py), a savepoint that is released, or rolled back alone on an error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.nested = False

    def __enter__(self) -> sqlite3.Connection:
        self.nested = self.conn.in_transaction
        self.conn.execute("SAVEPOINT one" if self.nested else "BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind: object, *rest: object) -> None:
        if self.nested:
            if kind is not None:
                self.conn.execute("ROLLBACK TO one")
            self.conn.execute("RELEASE one")
        elif kind is not None:
            self.conn.execute("ROLLBACK")
        else:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error:  # a failed COMMIT may leave the transaction open: nothing of it stays
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise


# --- inbox ------------------------------------------------------------------------------------


def record(
    conn: sqlite3.Connection, messages: Iterable[inbound.Message], statuses: Iterable[inbound.Status], now: float,
    events: bool = False,
) -> list[tuple[int, inbound.Message]]:
    """`events`: a reply Meta reports failed (a status webhook) is told to the shop, in the same commit."""
    fresh: list[tuple[int, inbound.Message]] = []
    with transaction(conn):
        for m in messages:
            row = conn.execute(
                "INSERT INTO inbox (message_id, customer, message, received_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (message_id) DO NOTHING RETURNING seq",
                (m.id, m.customer.key, codec.dump_message(m), now),
            ).fetchone()
            if row is not None:
                fresh.append((int(row[0]), m))
        for s in statuses:
            _status(conn, s, now, events)
    return fresh


def _status(conn: sqlite3.Connection, s: inbound.Status, now: float, events: bool = False) -> None:
    errors = json.dumps([_err(e) for e in s.errors], ensure_ascii=False) if s.errors else None
    conn.execute(
        "INSERT INTO statuses (wamid, status, timestamp, recipient, errors) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (s.id, s.status, s.timestamp, s.recipient_id, errors),
    )
    rank = _RANK.get(s.status)
    if rank is None:
        return
    first = s.errors[0] if s.errors else None
    code = first.code if first else None
    error = f"{first.title}: {first.details or first.message}" if first else None
    moved = conn.execute(
        "UPDATE outbox SET status = ?, updated_at = ?, error_code = COALESCE(?, error_code),"
        f" error = COALESCE(?, error) WHERE wamid = ? AND {_RANK_SQL} < ? RETURNING id, customer",
        (s.status, now, code, error, s.id, rank),
    ).fetchall()
    if events and s.status == "failed":  # moved forward only once, so a redelivered status tells nothing twice
        for row_id, customer in moved:
            add_events(conn, customer, [("reply_failed", {"id": str(row_id), "code": code,
                                                          "error": error or "Meta reported it failed",
                                                          "wamid": s.id})], now)


def pending(conn: sqlite3.Connection) -> list[tuple[int, codec.Pending]]:
    rows = conn.execute("SELECT seq, message FROM inbox WHERE done = 0 ORDER BY seq").fetchall()
    return [(int(seq), codec.load_pending(text)) for seq, text in rows]


def start(conn: sqlite3.Connection, started: codec.Started, now: float) -> int:
    """Keep a flow the business started in the inbox, in order with the customer's messages; its seq."""
    row = conn.execute(
        "INSERT INTO inbox (message_id, customer, message, received_at) VALUES (?, ?, ?, ?) RETURNING seq",
        (codec.STARTED + uuid.uuid4().hex, started.customer.key, codec.dump_started(started), now),
    ).fetchone()
    return int(row[0])


def skip(conn: sqlite3.Connection, seq: int, customer: str) -> None:
    with transaction(conn):
        conn.execute("UPDATE inbox SET done = 1 WHERE seq = ?", (seq,))
        conn.execute("DELETE FROM conversations WHERE customer = ?", (customer,))


# --- conversations ----------------------------------------------------------------------------


def load_state(conn: sqlite3.Connection, customer: str) -> State | None:
    row = conn.execute("SELECT state FROM conversations WHERE customer = ?", (customer,)).fetchone()
    return State.from_json(row[0]) if row else None


def finish_turn(
    conn: sqlite3.Connection,
    seq: int | None,
    customer: str,
    state: State,
    bodies: list[dict[str, Any]],
    now: float,
    contact: inbound.Customer | None,
    handoff: str | None,
    events: Iterable[Event] = (),
    timers: Iterable[TimerChange] = (),
    fired: timersql.Fired | None = None,
    state_json: str | None = None,
) -> list[Row]:
    with transaction(conn):
        add_events(conn, customer, events, now)
        timersql.apply(conn, customer, timers, fired, now)
        conn.execute(
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
                state_json if state_json is not None else state.to_json(),
                state.status,
                _contact(contact) if contact else None,
                handoff,
                now if state.status == HANDOFF else None,
                now,
            ),
        )
        rows = _queue(conn, customer, bodies, seq, now)
        if seq is not None:
            conn.execute("UPDATE inbox SET done = 1 WHERE seq = ?", (seq,))
    return rows


def _queue(conn: sqlite3.Connection, customer: str, bodies: list[dict[str, Any]], seq: int | None,
           now: float, *, once: bool = False) -> list[Row]:
    rows: list[Row] = []
    for body in bodies:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        row = conn.execute(
            "INSERT INTO outbox (customer, body, inbox_seq, created_at, updated_at, once) VALUES (?, ?, ?, ?, ?, ?)"
            " RETURNING id",
            (customer, text, seq, now, now, int(once)),
        ).fetchone()
        rows.append((int(row[0]), customer, body, 0, text))
    return rows


def queue(conn: sqlite3.Connection, customer: str, bodies: list[dict[str, Any]], now: float) -> list[Row]:
    with transaction(conn):
        return _queue(conn, customer, bodies, None, now)


def reengage(conn: sqlite3.Connection, customer: str, body: dict[str, Any], now: float, every: float) -> list[Row]:
    with transaction(conn):
        due = conn.execute(
            "INSERT INTO conversations (customer, state, updated_at, reengaged_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (customer) DO UPDATE SET reengaged_at = excluded.reengaged_at"
            " WHERE conversations.reengaged_at IS NULL OR conversations.reengaged_at <= ? RETURNING 1",
            (customer, State().to_json(), now, now, now - every),
        ).fetchone()
        return _queue(conn, customer, [body], None, now) if due else []


def contact(conn: sqlite3.Connection, customer: str) -> inbound.Customer | None:
    row = conn.execute("SELECT contact FROM conversations WHERE customer = ?", (customer,)).fetchone()
    if row is None or row[0] is None:
        return None
    d = json.loads(row[0])
    return inbound.Customer(d.get("wa_id"), d.get("user_id"), d.get("name"))


def handoffs(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT customer, contact, handoff_reason, handoff_at FROM conversations"
        " WHERE status = 'handoff' ORDER BY handoff_at"
    ).fetchall()
    return [
        {"customer": c, "name": json.loads(ct or "{}").get("name"), "reason": r or "", "since": at}
        for c, ct, r, at in rows
    ]


def last_inbound(conn: sqlite3.Connection, customer: str) -> float | None:
    """When the customer's latest message reached us (the 24-hour window runs from it)."""
    row = conn.execute(
        "SELECT received_at FROM inbox WHERE customer = ? AND message_id NOT LIKE 'wabot:start:%'"
        " ORDER BY seq DESC LIMIT 1", (customer,)
    ).fetchone()
    return None if row is None else float(row[0])


def count_status(conn: sqlite3.Connection, status: str) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM conversations WHERE status = ?", (status,)).fetchone()[0])


# --- opt-out ----------------------------------------------------------------------------------


def set_opted_out(
    conn: sqlite3.Connection, customer: str, opted_out: bool, now: float, events: Iterable[Event] = ()
) -> None:
    with transaction(conn):
        add_events(conn, customer, events, now)
        conn.execute(
            "INSERT INTO conversations (customer, state, opted_out_at, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (customer) DO UPDATE SET opted_out_at = excluded.opted_out_at",
            (customer, State().to_json(), now if opted_out else None, now),
        )


def opted_out(conn: sqlite3.Connection, customer: str) -> bool:
    row = conn.execute("SELECT opted_out_at FROM conversations WHERE customer = ?", (customer,)).fetchone()
    return row is not None and row[0] is not None


# --- history ----------------------------------------------------------------------------------


def history(conn: sqlite3.Connection, customer: str | None, limit: int) -> list[tuple[Any, ...]]:
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
    return [tuple(r[:6]) for r in conn.execute(sql, args).fetchall()]


def customers_like(conn: sqlite3.Connection, pattern: str, limit: int) -> list[str]:
    """Customers (wa_id) with a conversation or history matching the GLOB `pattern`, at most `limit`."""
    rows = conn.execute(
        "SELECT customer FROM conversations WHERE customer GLOB ?1 UNION SELECT customer FROM inbox"
        " WHERE customer GLOB ?1 UNION SELECT customer FROM outbox WHERE customer GLOB ?1 ORDER BY 1 LIMIT ?2",
        (pattern, limit),
    ).fetchall()
    return [str(r[0]) for r in rows]


# --- outbox -----------------------------------------------------------------------------------


def queued(conn: sqlite3.Connection) -> list[Row]:
    rows = conn.execute(
        "SELECT id, customer, body, attempts FROM outbox WHERE status = 'queued' ORDER BY id"
    ).fetchall()
    return [(int(i), c, json.loads(b), int(a), b) for i, c, b, a in rows]


def oldest_queued(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT created_at FROM outbox WHERE status = 'queued' ORDER BY id LIMIT 1").fetchone()
    return float(row[0]) if row else None


def update(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> None:
    with transaction(conn):
        conn.execute(sql, params)


def mark_sent(conn: sqlite3.Connection, sent: list[tuple[str, float, int]]) -> None:
    """(wamid, when, outbox id) for each reply Meta accepted, in one commit."""
    with transaction(conn):
        conn.executemany(
            "UPDATE outbox SET status = 'sent', wamid = ?, attempts = attempts + 1, updated_at = ?"
            " WHERE id = ? AND status = 'queued'",
            sent,
        )


def outbox_row(conn: sqlite3.Connection, row_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT id, customer, status, attempts, wamid, error_code, error FROM outbox WHERE id = ?", (row_id,)
    ).fetchone()
    if row is None:
        return None
    keys = ("id", "customer", "status", "attempts", "wamid", "error_code", "error")
    return dict(zip(keys, row, strict=True))


def add_events(conn: sqlite3.Connection, customer: str, events: Iterable[Event], now: float) -> None:
    """Keep events for the shop's systems inside the caller's transaction: the change and its events commit together."""
    if not events:  # most turns (events.url unset): not even a statement to look up
        return
    conn.executemany(
        "INSERT INTO events (customer, kind, data, next_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(customer, kind, json.dumps(data, ensure_ascii=False, default=str), now, now, now) for kind, data in events],
    )


def _contact(c: inbound.Customer) -> str:
    return json.dumps({"wa_id": c.wa_id, "user_id": c.user_id, "name": c.name}, ensure_ascii=False)


def _err(e: inbound.ErrorInfo) -> dict[str, Any]:
    return {"code": e.code, "title": e.title, "message": e.message, "details": e.details}


def stale_handoffs(conn: sqlite3.Connection, before: float) -> list[str]:
    """Customers in a handoff nobody has answered since `before` (the state keeps when a person last did)."""
    rows = conn.execute(
        "SELECT customer FROM conversations WHERE status = 'handoff'"
        " AND COALESCE(json_extract(state, '$.handoff_at'), 0) < ? ORDER BY handoff_at",
        (before,),
    ).fetchall()
    return [str(c) for (c,) in rows]
