"""PostgreSQL for the tests: one fresh database per test session (dropped after), one schema per test.

The server is the one at WABOT_TEST_POSTGRES (default: the trusted local `postgres` user on
127.0.0.1:5432). When it cannot be reached the PostgreSQL tests fail, saying so: CI must never pass
by skipping them. WABOT_TEST_POSTGRES=skip skips them on purpose, and pytest reports every skip.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from collections.abc import Iterator

import asyncpg
import pytest

ADMIN = os.environ.get("WABOT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
_schemas = itertools.count()


def _run(sql: str, url: str = ADMIN) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def session_database() -> Iterator[str]:
    """The URL of a database made for this test session; dropped when the session ends."""
    if ADMIN == "skip":
        pytest.skip("PostgreSQL tests skipped on purpose (WABOT_TEST_POSTGRES=skip)")
    name = f"wabot_test_{secrets.token_hex(4)}"
    try:
        _run(f"CREATE DATABASE {name}")
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {ADMIN} cannot be used ({exc}). Start it (.ci/run does: pg_ctlcluster ... "
                    "start) or set WABOT_TEST_POSTGRES=skip to skip these tests on purpose.")
    base = ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield base
    finally:
        _run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def fresh_schema(base: str) -> str:
    """A URL whose connections see only a new, empty schema of the session's database."""
    schema = f"t{next(_schemas)}_{secrets.token_hex(3)}"
    _run(f"CREATE SCHEMA {schema}", base)
    return f"{base}?search_path={schema}"
