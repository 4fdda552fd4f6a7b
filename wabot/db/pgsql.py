"""PostgreSQL's schema and connection: migrations numbered like sql.py's, the coordination tables, the pool.

Migration N here is migration N of sql.py for PostgreSQL (same tables, same columns, PostgreSQL's
types); the tables only several instances need (`claims`, `instances`) come with version 1. To add a
migration, append one script to both lists, in the same position. The schema version lives in the
table `wabot_schema`; a database newer than the code is refused, as sql.connect refuses an SQLite one.
"""

from __future__ import annotations

import logging
import re

import asyncpg

from wabot.db import pgtimers
from wabot.db.sql import newer
from wabot.errors import DatabaseError

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE inbox (
        seq BIGSERIAL PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        customer TEXT NOT NULL,
        message TEXT NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        done INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX inbox_pending ON inbox (seq) WHERE done = 0;
    CREATE INDEX inbox_customer ON inbox (customer, seq);
    CREATE INDEX inbox_customer_pending ON inbox (customer, seq) WHERE done = 0;
    CREATE TABLE conversations (
        customer TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'idle',
        contact TEXT,
        handoff_reason TEXT,
        handoff_at DOUBLE PRECISION,
        opted_out_at DOUBLE PRECISION,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX conversations_status ON conversations (status, handoff_at);
    CREATE TABLE outbox (
        id BIGSERIAL PRIMARY KEY,
        customer TEXT NOT NULL,
        body TEXT NOT NULL,
        inbox_seq BIGINT,
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        wamid TEXT,
        error_code INTEGER,
        error TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX outbox_queued ON outbox (id) WHERE status = 'queued';
    CREATE INDEX outbox_wamid ON outbox (wamid);
    CREATE INDEX outbox_customer ON outbox (customer, id);
    CREATE INDEX outbox_customer_queued ON outbox (customer, id) WHERE status = 'queued';
    CREATE TABLE statuses (
        wamid TEXT NOT NULL,
        status TEXT NOT NULL,
        timestamp BIGINT NOT NULL,
        recipient TEXT NOT NULL,
        errors TEXT,
        PRIMARY KEY (wamid, status)
    );
    -- several instances: who handles a customer now, until when (a lease, renewed while the owner lives)
    CREATE TABLE claims (
        customer TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        until DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX claims_owner ON claims (owner);
    CREATE TABLE instances (
        id TEXT PRIMARY KEY,
        seen_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 2: what the history purge looks up by age (the same indexes as SQLite's migration 2)
    """
    CREATE INDEX inbox_received ON inbox (received_at) WHERE done = 1;
    CREATE INDEX outbox_updated ON outbox (updated_at) WHERE status != 'queued';
    CREATE INDEX statuses_timestamp ON statuses (timestamp);
    """,
    # 3, 4: the business API's and the campaigns' tables, as SQLite's migrations 3 and 4 (db/pgapi.py,
    # db/pgcampaigns.py use them)
    """
    CREATE TABLE api_keys (
        name TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        created_at DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION
    );
    CREATE TABLE api_requests (
        api_key TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL,
        response TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (api_key, idempotency_key)
    );
    CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        customer TEXT NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at DOUBLE PRECISION NOT NULL,
        error TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX events_pending ON events (customer, id) WHERE status = 'pending';
    CREATE INDEX events_status ON events (status, id);
    """,
    """
    CREATE TABLE campaigns (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL,
        template TEXT NOT NULL,
        language TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'running',
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE campaign_recipients (
        campaign BIGINT NOT NULL,
        row INTEGER NOT NULL,
        customer TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        outbox_id BIGINT,
        reason TEXT,
        PRIMARY KEY (campaign, row)
    );
    CREATE UNIQUE INDEX campaign_customer ON campaign_recipients (campaign, customer) WHERE customer != '';
    CREATE INDEX campaign_pending ON campaign_recipients (campaign, row) WHERE status = 'pending';
    ALTER TABLE outbox ADD COLUMN once INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN sending INTEGER NOT NULL DEFAULT 0;
    """,
    # 5: the web console's tables, as SQLite's migration 5 (db/pgconsole.py)
    """
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE sessions (
        token TEXT PRIMARY KEY,
        name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE sign_in_failures (name TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
    CREATE INDEX sign_in_failures_name ON sign_in_failures (name, at);
    CREATE TABLE staff_actions (
        id BIGSERIAL PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
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
        at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (flow, step, customer)
    );
    CREATE TABLE misses (
        id BIGSERIAL PRIMARY KEY,
        customer TEXT NOT NULL,
        flow TEXT NOT NULL,
        step TEXT NOT NULL,
        text TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE stops (
        customer TEXT PRIMARY KEY, flow TEXT NOT NULL, step TEXT NOT NULL, at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX stops_step ON stops (flow, step);
    CREATE INDEX conversations_updated ON conversations (updated_at);
    CREATE INDEX outbox_created ON outbox (created_at);
    CREATE INDEX outbox_failed ON outbox (error_code, error) WHERE status = 'failed';
    """,
    # 6: flow timers, as SQLite's migration 6 (db/pgtimers.py)
    pgtimers.MIGRATION,
    # 7: when the last re-engagement template was queued, as SQLite's migration 7
    """
    ALTER TABLE conversations ADD COLUMN reengaged_at DOUBLE PRECISION;
    """,
]

NOW = "extract(epoch from clock_timestamp())"  # the database's clock: instances on other machines may drift
_MIGRATING = 7_300_142  # the advisory lock held while migrating: two instances starting at once migrate once


def is_url(target: str) -> bool:
    """Whether `database.url` names PostgreSQL (anything else is an SQLite file)."""
    return target.startswith(("postgresql://", "postgres://"))


def shown(url: str) -> str:
    """The URL for messages and logs: the password replaced by ***."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


async def connect(url: str, *, size: int = 10, durable: bool = True, stall: float | None = None) -> asyncpg.Pool:
    """A pool of connections to a migrated database; DatabaseError in plain words when it cannot be had.

    `stall`: seconds a transaction may wait for this process before PostgreSQL ends the session (the lease:
    past it, another instance takes the customers over and must not wait for the frozen one's row locks).
    `durable=False`: commits do not wait for the disk (synchronous_commit off, about 0.2 ms instead of
    4 ms here). Only for what may be lost when PostgreSQL itself crashes: leases, and "sent" marks
    (a reply marked sent then lost goes out once more, the window docs/postgres.md describes).
    """
    settings = {} if durable else {"synchronous_commit": "off"}
    if stall:  # a process frozen inside a transaction (SIGSTOP, a paused VM) must not hold its row locks for ever
        settings["idle_in_transaction_session_timeout"] = f"{max(1, round(stall * 1000))}ms"
    try:
        pool = await asyncpg.create_pool(url, min_size=min(4, size), max_size=size, command_timeout=30,
                                         server_settings=settings)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseError(
            f"Cannot connect to the PostgreSQL database {shown(url)}: {exc}. Check that the server runs, "
            "that the database exists (createdb) and the user may use it (setting database.url)."
        ) from None
    try:
        await migrate(pool, url)
    except BaseException:
        await pool.close()
        raise
    return pool


async def migrate(pool: asyncpg.Pool, url: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATING)
        await conn.execute("CREATE TABLE IF NOT EXISTS wabot_schema (version INTEGER NOT NULL)")
        version = await conn.fetchval("SELECT max(version) FROM wabot_schema") or 0
        if version > len(MIGRATIONS):
            raise DatabaseError(newer(shown(url), version, len(MIGRATIONS)))
        for n, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await conn.execute(script)
            await conn.execute("INSERT INTO wabot_schema (version) VALUES ($1)", n)
            log.info("database migrated to version %d", n)
