"""`wabot db copy SQLITE_PATH postgresql://...`: move a shop's data from its SQLite file to PostgreSQL.

Every table of the SQLite file that the PostgreSQL schema also has is copied, column by column
(the columns both have), in one transaction, with COPY; the id counters are then moved past the
copied rows. So a table added to both schemas later is copied without a change here. The target
must hold no wabot data yet: this moves a shop, it never merges two. Stop wabot first (docs/postgres.md).
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import TextIO

import asyncpg

from wabot.db import pgsql, sql
from wabot.db.postgres import Conn, PgStore
from wabot.errors import DatabaseError

BATCH = 5000  # rows read from SQLite and sent with one COPY


def copy(source: Path, url: str, *, out: TextIO = sys.stdout) -> int:
    """Copy, printing what was moved; 1 with a plain sentence on stderr when it cannot be done."""
    if not pgsql.is_url(url):
        print(f"wabot: the target must be a postgresql:// URL, not {url!r}.", file=sys.stderr)
        return 2
    if not source.is_file():
        print(f"wabot: {source} is not an SQLite file (no such file).", file=sys.stderr)
        return 2
    try:
        counts = asyncio.run(_copy(source, url))
    except (DatabaseError, sqlite3.Error, asyncpg.PostgresError, OSError) as err:
        print(f"wabot: nothing was copied: {err}", file=sys.stderr)
        return 1
    for table, n in counts.items():
        print(f"{table}: {n} rows", file=out)
    print(f"Copied {source} to {pgsql.shown(url)}. Set database.url (WABOT_DATABASE_URL) and start wabot.", file=out)
    return 0


async def _copy(source: Path, url: str) -> dict[str, int]:
    lite = sql.connect(str(source))  # migrates an older file to this wabot's schema; refuses a newer one
    try:
        store = await PgStore.open(url)
    except BaseException:
        lite.close()
        raise
    try:
        async with store.pool.acquire() as conn, conn.transaction():
            counts: dict[str, int] = {}
            for table in _tables(lite):
                wanted = await _columns(conn, table)
                if not wanted:
                    continue  # a table only the SQLite store has
                columns = [c for c in _lite_columns(lite, table) if c in wanted]
                if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
                    raise DatabaseError(f"the table {table} of {pgsql.shown(url)} already holds rows; "
                                        "copy into an empty database (createdb a new one)")
                counts[table] = await _table(lite, conn, table, columns)
                for column in columns:
                    counter = await conn.fetchval("SELECT pg_get_serial_sequence($1, $2)", table, column)
                    if counter is not None:  # ids go on after the copied ones
                        await conn.execute(f"SELECT setval($1, (SELECT COALESCE(max({column}), 0) + 1"
                                           f" FROM {table}), false)", counter)
        return counts
    finally:
        lite.close()
        await store.close()


def _tables(lite: sqlite3.Connection) -> list[str]:
    rows = lite.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                        " ORDER BY name").fetchall()
    return [r[0] for r in rows]


def _lite_columns(lite: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in lite.execute(f"PRAGMA table_info({table})").fetchall()]


async def _columns(conn: Conn, table: str) -> dict[str, str]:
    """The table's columns in PostgreSQL (of the schema the connection uses) and their types."""
    rows = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1", table,
    )
    return {name: kind for name, kind in rows}


async def _table(lite: sqlite3.Connection, conn: Conn, table: str, columns: list[str]) -> int:
    kinds = await _columns(conn, table)
    floats = [kinds[c] in ("double precision", "real") for c in columns]
    cursor = lite.execute(f"SELECT {', '.join(columns)} FROM {table}")
    total = 0
    while batch := cursor.fetchmany(BATCH):
        records = [tuple(float(v) if f and v is not None else v for v, f in zip(row, floats, strict=True))
                   for row in batch]
        await conn.copy_records_to_table(table, records=records, columns=columns)
        total += len(records)
    return total
