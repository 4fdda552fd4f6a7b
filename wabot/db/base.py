"""What the server needs of a database (two implementations: store.Store on SQLite, postgres.PgStore).

`open_database` picks one from the setting: a postgresql:// URL opens PostgreSQL, anything else
is an SQLite file. A new query goes into both implementations and into `Database` below; the
module docstring of postgres.py says how. The business API's, the campaigns' and the console's data are
three smaller protocols of their own (db/areas.py), offered as `db.api`, `db.campaigns` and `db.console`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from wabot.db import codec, pgsql
from wabot.db.areas import ApiData, CampaignData, ConsoleData
from wabot.db.postgres import PgStore
from wabot.db.store import OutRow, Store
from wabot.db.timersql import Fired, TimerRow
from wabot.state import State, Status, TimerChange
from wabot.whatsapp import inbound

__all__ = ["DATA_ERRORS", "DB_ERRORS", "Database", "OutRow", "open_database"]

# What a database may raise when it, not the message, is at fault: the caller keeps the work for later.
# asyncpg's InternalClientError ("cannot switch to state ...; another operation is in progress") is what a
# connection PostgreSQL closed mid-transaction raises next (an instance frozen past
# idle_in_transaction_session_timeout).
DB_ERRORS: tuple[type[BaseException], ...] = (
    sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError,
)
# Among those, what the data of one turn causes ("string or blob too big"): trying it again fails again.
DATA_ERRORS: tuple[type[BaseException], ...] = (sqlite3.DataError, asyncpg.exceptions.DataError)


class Database(Protocol):
    """The database of one shop; every call is one transaction."""

    path: str  # what messages call it: the SQLite file, or the URL without its password
    events: bool  # events.url is set: a reply Meta reports failed is kept as a reply_failed event

    @property
    def api(self) -> ApiData: ...

    @property
    def campaigns(self) -> CampaignData: ...

    @property
    def console(self) -> ConsoleData: ...

    async def close(self) -> None: ...

    async def record(
        self, messages: Iterable[inbound.Message], statuses: Iterable[inbound.Status], *, now: float
    ) -> list[tuple[int, inbound.Message]]: ...

    async def pending(self) -> list[tuple[int, codec.Pending]]: ...

    async def skip(self, seq: int, *, customer: str) -> None: ...

    async def load_state(self, customer: str) -> State | None: ...

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
        events: Iterable[tuple[str, dict[str, Any]]] = (),
        timers: Iterable[TimerChange] = (),
        fired: Fired | None = None,
        state_json: str | None = None,
    ) -> list[OutRow]: ...

    async def queue(self, customer: str, bodies: list[dict[str, Any]], *, now: float) -> list[OutRow]: ...

    async def reengage(self, customer: str, body: dict[str, Any], *, now: float, every: float) -> list[OutRow]: ...

    async def contact(self, customer: str) -> inbound.Customer | None: ...

    async def handoffs(self) -> list[dict[str, Any]]: ...

    async def stale_handoffs(self, *, before: float) -> list[str]: ...

    async def last_inbound(self, customer: str) -> float | None: ...

    async def count_status(self, status: Status) -> int: ...

    async def set_opted_out(
        self, customer: str, opted_out: bool, *, now: float, events: Iterable[tuple[str, dict[str, Any]]] = ()
    ) -> None: ...

    async def opted_out(self, customer: str) -> bool: ...

    async def history(self, customer: str | None = None, *, limit: int = 0) -> list[tuple[Any, ...]]: ...

    async def customers_like(self, pattern: str, *, limit: int = 10) -> list[str]: ...

    async def purge(self, *, before: float, batch: int = ...) -> int: ...

    async def queued(self) -> list[OutRow]: ...

    async def oldest_queued(self) -> float | None: ...

    async def mark_sent(self, row_id: int, *, wamid: str, now: float) -> None: ...

    async def mark_sent_many(self, sent: list[tuple[str, float, int]]) -> None: ...

    async def mark_dry_run(self, row_id: int, *, now: float) -> None: ...

    async def mark_failed(self, row_id: int, *, code: int | None, error: str, now: float) -> None: ...

    async def mark_retry(self, row_id: int, *, code: int | None, error: str, now: float) -> None: ...

    async def outbox_row(self, row_id: int) -> dict[str, Any] | None: ...

    async def claim_timers(self, *, owner: str, now: float, until: float, limit: int = 100) -> list[TimerRow]: ...

    async def next_timer(self) -> float | None: ...

    async def timer_pending(self, timer: int) -> bool: ...

    async def unclaim_timers(self) -> int: ...

    async def timers(self, customer: str, *, limit: int = 20) -> list[dict[str, Any]]: ...


async def open_database(target: str | Path, *, synchronous: str = "normal", lease: float | None = None) -> Database:
    """PostgreSQL for a postgresql:// URL, else the SQLite file `target` (created and migrated as needed).

    `synchronous` is SQLite's durability (database.synchronous); PostgreSQL's is the server's own setting.
    `lease`: a server's database.lease_seconds (PostgreSQL ends a transaction left idle longer than that).
    """
    if isinstance(target, str) and pgsql.is_url(target):
        return await PgStore.open(target, lease=lease)
    return await Store.open(target, synchronous=synchronous)
