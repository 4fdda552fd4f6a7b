"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests import pg
from tests.apptools import PHONE_ID
from tests.fakegraph import FakeGraph


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraph]:
    """A fake Graph API on loopback for the business number the test apps use."""
    async with FakeGraph(phone_number_id=PHONE_ID) as graph:
        yield graph


@pytest.fixture(scope="session")
def pg_session() -> Iterator[str]:
    """A PostgreSQL database for this test session (tests/pg.py)."""
    yield from pg.session_database()


@pytest.fixture
def pg_url(pg_session: str) -> str:
    """A postgresql:// URL to an empty schema of its own."""
    return pg.fresh_schema(pg_session)


@pytest.fixture(params=["sqlite", "postgres"])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store in turn: an SQLite file in tmp_path, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "wabot.db")
    return str(request.getfixturevalue("pg_url"))
