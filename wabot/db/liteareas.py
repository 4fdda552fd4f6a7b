"""The business API's, the campaigns' and the console's data on SQLite (db/areas.py): each call one transaction
on the store's connection, through its `run` (Store._run), over the query functions of apisql.py,
campaignsql.py, staff.py and reports.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

from wabot.db import apisql, campaignsql, codec, reports, sql, staff
from wabot.db.areas import Account, Event, EventRow, Found, Recipient, Skip
from wabot.db.rows import OutRow

__all__ = ["LiteApi", "LiteCampaigns", "LiteConsole"]

T = TypeVar("T")


class Run(Protocol):
    def __call__(self, fn: Callable[..., T], /, *args: Any) -> Awaitable[T]: ...


class LiteApi:
    """The business API's keys, idempotent sends and events to the shop."""

    def __init__(self, run: Run) -> None:
        self._run = run

    async def add_key(self, name: str, digest: str, *, now: float) -> bool:
        return await self._run(apisql.add_key, name, digest, now)

    async def key_name(self, digest: str) -> str | None:
        return await self._run(apisql.key_name, digest)

    async def keys(self) -> list[tuple[str, float, float | None]]:
        return await self._run(apisql.keys)

    async def revoke_key(self, name: str, *, now: float) -> bool:
        return await self._run(apisql.revoke_key, name, now)

    async def remembered(self, api_key: str, idempotency_key: str) -> tuple[str, int, Any] | None:
        return await self._run(apisql.remembered, api_key, idempotency_key)

    async def remember(self, api_key: str, idempotency_key: str, fingerprint: str, *, status: int, answer: Any,
                       now: float) -> None:
        await self._run(apisql.remember, api_key, idempotency_key, fingerprint, status, answer, now)

    async def send(
        self, customer: str, body: dict[str, Any], *, now: float, idempotency: tuple[str, str, str] | None
    ) -> tuple[OutRow | None, int, Any]:
        row, status, answer = await self._run(apisql.send, customer, body, now, idempotency)
        return (OutRow(*row) if row else None), status, answer

    async def start_flow(
        self, started: codec.Started, *, answer: Any, now: float, idempotency: tuple[str, str, str] | None
    ) -> tuple[int | None, int, Any]:
        return await self._run(apisql.start_flow, started, answer, now, idempotency)

    async def message(self, row_id: int) -> dict[str, Any] | None:
        return await self._run(apisql.message, row_id)

    async def add_events(self, customer: str, events: Iterable[Event], *, now: float) -> None:
        def add(conn: Any) -> None:
            with sql.transaction(conn):
                sql.add_events(conn, customer, events, now)

        await self._run(add)

    async def due_events(self, *, now: float, lease: float, limit: int = 100) -> list[EventRow]:
        return await self._run(apisql.due_events, now, lease, limit)

    async def next_event_at(self) -> float | None:
        return await self._run(apisql.next_event_at)

    async def event_delivered(self, event_id: int, *, now: float) -> None:
        await self._run(apisql.event_delivered, event_id, now)

    async def event_failed(self, event_id: int, *, error: str, next_at: float, dead: bool, now: float) -> None:
        await self._run(apisql.event_failed, event_id, error, next_at, dead, now)

    async def unclaim_events(self, event_ids: list[int], *, now: float) -> None:
        await self._run(apisql.unclaim_events, event_ids, now)

    async def dead_events(self, *, limit: int = 100) -> list[dict[str, Any]]:
        return await self._run(apisql.dead_events, limit)

    async def retry_event(self, event_id: int, *, now: float) -> bool:
        return await self._run(apisql.retry_event, event_id, now)


class LiteCampaigns:
    """Campaigns' recipients, fed to the outbox, and their report."""

    def __init__(self, run: Run, group: Run) -> None:
        self._run = run
        self._group = group  # the hot path's group commit (db/group.py): the claims of one loop pass share a commit

    async def add(
        self, *, name: str, template: str, language: str, recipients: list[Recipient], invalid: list[Skip],
        now: float,
    ) -> tuple[int, int]:
        return await self._run(campaignsql.add, name, template, language, recipients, invalid, now)

    async def running(self) -> list[tuple[int, str, str]]:
        return await self._run(campaignsql.running)

    async def feed(
        self, campaign: int, *, limit: int, now: float, bodies: Callable[[str, list[str]], dict[str, Any]]
    ) -> tuple[list[OutRow], bool]:
        rows, more = await self._run(campaignsql.feed, campaign, limit, now, bodies)
        return [OutRow(*r, once=True) for r in rows], more

    async def sending(self, row_ids: list[int], *, now: float) -> set[int]:
        return await self._group(campaignsql.sending, row_ids, now)

    async def interrupted(self, *, now: float, quiet_for: float = 0.0) -> int:
        return await self._run(campaignsql.interrupted, now, quiet_for)

    async def set_status(self, campaign: int, status: str, *, now: float) -> str | None:
        return await self._run(campaignsql.set_status, campaign, status, now)

    async def report(self, campaign: int) -> dict[str, Any] | None:
        return await self._run(campaignsql.report, campaign)


class LiteConsole:
    """The console's people and reports."""

    def __init__(self, run: Run) -> None:
        self._run = run

    async def add_user(self, name: str, role: str, password: str, *, now: float) -> bool:
        return await self._run(staff.add_user, name, role, password, now)

    async def user(self, name: str) -> Account | None:
        return await self._run(staff.user, name)

    async def count_users(self) -> int:
        return await self._run(staff.count_users)

    async def new_session(self, token: str, name: str, csrf: str, *, now: float, expires: float) -> None:
        await self._run(staff.new_session, token, name, csrf, now, expires)

    async def session(self, token: str, *, now: float) -> tuple[str, str, str] | None:
        return await self._run(staff.session, token, now)

    async def drop_session(self, token: str) -> None:
        await self._run(staff.drop_session, token)

    async def note_failure(self, name: str, *, now: float) -> None:
        await self._run(staff.note_failure, name, now)

    async def failures(self, name: str, *, since: float) -> tuple[int, float | None]:
        return await self._run(staff.failures, name, since)

    async def forget_failures(self, name: str) -> None:
        await self._run(staff.forget_failures, name)

    async def record_action(self, name: str, action: str, customer: str, detail: str | None, *, now: float) -> None:
        await self._run(staff.record_action, name, action, customer, detail, now)

    async def staff_reply(self, name: str, customer: str, body: dict[str, Any], *, now: float,
                          action: str) -> list[OutRow]:
        return [OutRow(*r) for r in await self._run(staff.staff_reply, name, customer, body, now, action)]

    async def actions(self, customer: str, limit: int = 20) -> list[tuple[float, str, str]]:
        return await self._run(staff.actions, customer, limit)

    async def search(self, query: str, limit: int = 50) -> list[Found]:
        return await self._run(reports.search, query, limit)

    async def messages(self, customer: str, limit: int) -> list[tuple[Any, ...]]:
        return await self._run(reports.messages, customer, limit)

    async def record_turns(self, turns: Iterable[tuple[str, str, str, bool, str, float]]) -> None:
        await self._run(reports.record_turns, list(turns))

    async def by_day(self, since: float, offset: float, days: int) -> list[tuple[str, int, int]]:
        return await self._run(reports.by_day, since, offset, days)

    async def overview(self, now: float, active_within: float) -> dict[str, Any]:
        return await self._run(reports.overview, now, active_within)

    async def failed_replies(self, limit: int = 20) -> list[tuple[int | None, str, int]]:
        return await self._run(reports.failed_replies, limit)

    async def funnel(self) -> dict[tuple[str, str], tuple[int, int]]:
        return await self._run(reports.funnel)

    async def not_understood(self, limit: int = 50) -> list[tuple[str, int, str]]:
        return await self._run(reports.not_understood, limit)

    async def media(self, media_id: str) -> list[str]:
        return await self._run(reports.media, media_id)
