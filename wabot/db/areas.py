"""What the business API, the campaigns and the web console keep in the database: one small protocol each.

Each has two implementations, like the `Database` itself (db/base.py): on SQLite (db/liteareas.py, over the
query functions of apisql.py, campaignsql.py, staff.py and reports.py) and on PostgreSQL (db/pgapi.py,
pgcampaigns.py, pgconsole.py). A database offers them as `db.api`, `db.campaigns` and `db.console`. Every
call is one transaction. On PostgreSQL several instances may call at once: what one of them must do alone
(deliver an event, queue a campaign's recipient, send a campaign's message) is claimed in the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from wabot.db.codec import Started
from wabot.db.rows import OutRow

__all__ = ["Account", "ApiData", "CampaignData", "ConsoleData", "Event", "EventRow", "Found", "Recipient", "Skip"]

Event = tuple[str, dict[str, Any]]  # an event for the shop's systems: (kind, data)
EventRow = tuple[int, str, str, str, int, float]  # id, customer, kind, data (JSON text), attempts, created_at
Recipient = tuple[str, list[str]]  # (number, the template's body parameters), numbered from 1 in list order
Skip = tuple[int, str]  # (row of the caller's list that cannot be sent, why), kept to be counted
Account = tuple[str, str, str]  # name, role, password hash
Found = tuple[str, str | None, str, str, str, float, bool]  # customer, name, status, flow, step, updated, opted out


class ApiData(Protocol):
    """The business API's keys, the answers kept for Idempotency-Key, its sends, and the events to the shop."""

    async def add_key(self, name: str, digest: str, *, now: float) -> bool:
        """Keep an API key's hash; False when the name is taken (even by a revoked key)."""

    async def key_name(self, digest: str) -> str | None:
        """The name of the live API key with this hash, or None."""

    async def keys(self) -> list[tuple[str, float, float | None]]:
        """(name, created at, revoked at) for every API key."""

    async def revoke_key(self, name: str, *, now: float) -> bool: ...

    async def remembered(self, api_key: str, idempotency_key: str) -> tuple[str, int, Any] | None:
        """(fingerprint, status, answer) of an earlier request with this Idempotency-Key."""

    async def remember(self, api_key: str, idempotency_key: str, fingerprint: str, *, status: int, answer: Any,
                       now: float) -> None:
        """Keep the answer to a request made with an Idempotency-Key (the first one kept wins)."""

    async def send(
        self, customer: str, body: dict[str, Any], *, now: float, idempotency: tuple[str, str, str] | None
    ) -> tuple[OutRow | None, int, Any]:
        """Queue one message; with (api key, Idempotency-Key, fingerprint) only once: (row or None, status, answer)."""

    async def start_flow(
        self, started: Started, *, answer: Any, now: float, idempotency: tuple[str, str, str] | None
    ) -> tuple[int | None, int, Any]:
        """Keep a flow the business starts in the inbox (durable before the 202), with the answer for its
        Idempotency-Key, in one commit: (its inbox seq, or None when the key was used before; status; answer)."""

    async def message(self, row_id: int) -> dict[str, Any] | None:
        """What became of a message sent through the API (its outbox row), or None."""

    async def add_events(self, customer: str, events: Iterable[Event], *, now: float) -> None:
        """Keep events for the shop's systems (their own commit: for changes made elsewhere)."""

    async def due_events(self, *, now: float, lease: float, limit: int = 100) -> list[EventRow]:
        """Claim each customer's oldest pending event whose time has come, for `lease` seconds.

        A claimed event is not due again until its lease runs out (an instance that died while delivering
        it), so no two instances deliver one event at once, and a customer's events go out in order.
        """

    async def next_event_at(self) -> float | None: ...

    async def event_delivered(self, event_id: int, *, now: float) -> None: ...

    async def event_failed(self, event_id: int, *, error: str, next_at: float, dead: bool, now: float) -> None: ...

    async def unclaim_events(self, event_ids: list[int], *, now: float) -> None:
        """Due again now: events claimed for a delivery that a clean stop cut short (not for their whole lease)."""

    async def dead_events(self, *, limit: int = 100) -> list[dict[str, Any]]: ...

    async def retry_event(self, event_id: int, *, now: float) -> bool:
        """Send a dead-lettered event again (attempts start over); False when there is no such dead event."""


class CampaignData(Protocol):
    """Campaigns: their recipients, handed to the outbox a few at a time, each at most once, and the report."""

    async def add(
        self, *, name: str, template: str, language: str, recipients: list[Recipient], invalid: list[Skip],
        now: float,
    ) -> tuple[int, int]:
        """A new running campaign: (its id, duplicate numbers skipped)."""

    async def running(self) -> list[tuple[int, str, str]]:
        """(id, template, language) of the campaigns sending now, oldest first."""

    async def feed(
        self, campaign: int, *, limit: int, now: float, bodies: Callable[[str, list[str]], dict[str, Any]]
    ) -> tuple[list[OutRow], bool]:
        """Queue the next `limit` recipients to the outbox (opted-out ones skipped): (the rows, whether more remain).

        Each recipient is queued in the commit that marks it queued, and claimed so that two instances feeding
        the same campaign never queue one recipient twice.
        """

    async def sending(self, row_ids: list[int], *, now: float) -> set[int]:
        """Claim at-most-once rows just before their Graph calls, in one commit: the rows claimed now (one claimed
        before is left out: never send it)."""

    async def interrupted(self, *, now: float, quiet_for: float = 0.0) -> int:
        """Fail the at-most-once rows a crash caught mid-send (claimed `quiet_for` seconds ago or more): how many."""

    async def set_status(self, campaign: int, status: str, *, now: float) -> str | None:
        """Pause, resume or cancel; the status before (None: no such campaign). A finished campaign stays so."""

    async def report(self, campaign: int) -> dict[str, Any] | None:
        """Recipients by outcome, failures by Meta's code, skipped by reason, replies received."""


class ConsoleData(Protocol):
    """The web console's people (accounts, sessions, sign-in failures, who did what) and its reports."""

    async def add_user(self, name: str, role: str, password: str, *, now: float) -> bool:
        """Create the account, or set a new password and role (signing every device out); True when new."""

    async def user(self, name: str) -> Account | None: ...

    async def count_users(self) -> int: ...

    async def new_session(self, token: str, name: str, csrf: str, *, now: float, expires: float) -> None: ...

    async def session(self, token: str, *, now: float) -> tuple[str, str, str] | None:
        """(name, role, csrf token) of a live session, or None when it is unknown or expired."""

    async def drop_session(self, token: str) -> None: ...

    async def note_failure(self, name: str, *, now: float) -> None: ...

    async def failures(self, name: str, *, since: float) -> tuple[int, float | None]:
        """How many failed sign-ins for `name` since then, and the latest one's time."""

    async def forget_failures(self, name: str) -> None: ...

    async def record_action(self, name: str, action: str, customer: str, detail: str | None, *, now: float) -> None:
        ...

    async def staff_reply(self, name: str, customer: str, body: dict[str, Any], *, now: float,
                          action: str) -> list[OutRow]:
        """Queue a person's message and record who sent it, in one commit."""

    async def actions(self, customer: str, limit: int = 20) -> list[tuple[float, str, str]]:
        """The latest things people did in a conversation: (when, who, what), newest first."""

    async def search(self, query: str, limit: int = 50) -> list[Found]:
        """Conversations whose number, name or saved variables match `query`; the latest first."""

    async def messages(self, customer: str, limit: int) -> list[tuple[Any, ...]]:
        """The latest messages both ways, oldest first: (at, "in"|"out", payload, status, error, agent, id)."""

    async def record_turns(self, turns: Iterable[tuple[str, str, str, bool, str, float]]) -> None:
        """(customer, flow, step, missed, text, at) after each turn: where customers reached and stopped, misses."""

    async def by_day(self, since: float, offset: float, days: int) -> list[tuple[str, int, int]]:
        """(day, messages in, messages out) for the last `days` days in the bot's time zone (`offset` from UTC)."""

    async def overview(self, now: float, active_within: float) -> dict[str, Any]: ...

    async def failed_replies(self, limit: int = 20) -> list[tuple[int | None, str, int]]: ...

    async def funnel(self) -> dict[tuple[str, str], tuple[int, int]]: ...

    async def not_understood(self, limit: int = 50) -> list[tuple[str, int, str]]: ...

    async def media(self, media_id: str) -> list[str]:
        """The stored inbound messages (JSON text) that may carry `media_id`, newest first (at most 20)."""
