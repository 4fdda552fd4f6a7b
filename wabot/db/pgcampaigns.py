"""Campaigns on PostgreSQL (db/areas.py CampaignData): the twin of campaignsql.py.

Several instances may feed the same campaign: each takes its next recipients with FOR UPDATE SKIP LOCKED,
so a recipient is queued by one of them, once, in the commit that marks it queued. Each instance's outbox
sends at its share of outbox.rate_per_second (server/cluster.py), so the number as a whole keeps the rate.
A campaign's message is claimed (`sending`) just before its Graph call: an instance that finds it claimed
drops it, so it goes out at most once even when two instances hold it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import asyncpg

from wabot.db.areas import Recipient, Skip
from wabot.db.campaignsql import summary
from wabot.db.pgapi import queue
from wabot.db.rows import OutRow

__all__ = ["PgCampaigns"]

INTERRUPTED = ("wabot stopped while sending it; not sent again, so the customer never gets it twice (Meta may have"
               " delivered it)")


class PgCampaigns:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(
        self, *, name: str, template: str, language: str, recipients: list[Recipient], invalid: list[Skip],
        now: float,
    ) -> tuple[int, int]:
        async with self.pool.acquire() as conn, conn.transaction():
            cid = int(await conn.fetchval(
                "INSERT INTO campaigns (name, template, language, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $4) RETURNING id", name, template, language, now))
            seen: set[str] = set()
            rows: list[tuple[int, int, str, str, str, str | None]] = []
            duplicates = 0
            for n, (customer, params) in enumerate(recipients, start=1):
                if customer in seen:  # at most once per customer in a campaign
                    duplicates += 1
                    rows.append((cid, -len(rows) - 1, "", "[]", "skipped", "duplicate"))
                    continue
                seen.add(customer)
                rows.append((cid, n, customer, json.dumps(params, ensure_ascii=False), "pending", None))
            rows += [(cid, -len(rows) - i, "", "[]", "skipped", why) for i, (_, why) in enumerate(invalid, start=1)]
            await conn.executemany(
                'INSERT INTO campaign_recipients (campaign, "row", customer, params, status, reason)'
                " VALUES ($1, $2, $3, $4, $5, $6)", rows)
        return cid, duplicates

    async def running(self) -> list[tuple[int, str, str]]:
        rows = await self.pool.fetch(
            "SELECT id, template, language FROM campaigns WHERE status = 'running' ORDER BY id")
        return [(int(i), t, lang) for i, t, lang in rows]

    async def feed(
        self, campaign: int, *, limit: int, now: float, bodies: Callable[[str, list[str]], dict[str, Any]]
    ) -> tuple[list[OutRow], bool]:
        queued: list[OutRow] = []
        async with self.pool.acquire() as conn, conn.transaction():
            pending = await conn.fetch(
                'SELECT r."row", r.customer, r.params, c.opted_out_at FROM campaign_recipients r'
                " LEFT JOIN conversations c ON c.customer = r.customer"
                " WHERE r.campaign = $1 AND r.status = 'pending'"
                ' ORDER BY r."row" LIMIT $2 FOR UPDATE OF r SKIP LOCKED',
                campaign, limit)
            skipped = [(campaign, row) for row, _, _, out in pending if out is not None]
            if skipped:
                await conn.executemany("UPDATE campaign_recipients SET status = 'skipped', reason = 'opted out'"
                                       ' WHERE campaign = $1 AND "row" = $2', skipped)
            marks: list[tuple[int, int, int]] = []
            for row, customer, params, out in pending:
                if out is None:
                    added = (await queue(conn, customer, [bodies(customer, json.loads(params))], None, now,
                                         once=True))[0]
                    queued.append(added)
                    marks.append((added.id, campaign, row))
            if marks:
                await conn.executemany("UPDATE campaign_recipients SET status = 'queued', outbox_id = $1"
                                       ' WHERE campaign = $2 AND "row" = $3', marks)
            more = len(pending) == limit or bool(await conn.fetchval(
                "SELECT 1 FROM campaign_recipients WHERE campaign = $1 AND status = 'pending' LIMIT 1", campaign))
            if not more:
                await conn.execute("UPDATE campaigns SET status = 'done', updated_at = $1 WHERE id = $2"
                                   " AND status = 'running'", now, campaign)
        return queued, more

    async def sending(self, row_ids: list[int], *, now: float) -> set[int]:
        rows = await self.pool.fetch(
            "UPDATE outbox SET sending = 1, updated_at = $2 WHERE id = ANY($1::bigint[]) AND sending = 0"
            " AND status = 'queued' RETURNING id", row_ids, now)
        return {int(r["id"]) for r in rows}

    async def interrupted(self, *, now: float, quiet_for: float = 0.0) -> int:
        rows = await self.pool.fetch(
            "UPDATE outbox SET status = 'failed', updated_at = $1, error = $2"
            " WHERE status = 'queued' AND once = 1 AND sending = 1 AND updated_at <= $3 RETURNING id",
            now, INTERRUPTED, now - quiet_for)
        return len(rows)

    async def set_status(self, campaign: int, status: str, *, now: float) -> str | None:
        async with self.pool.acquire() as conn, conn.transaction():
            before = await conn.fetchval("SELECT status FROM campaigns WHERE id = $1 FOR UPDATE", campaign)
            if before is None:
                return None
            if before in ("running", "paused"):
                await conn.execute("UPDATE campaigns SET status = $1, updated_at = $2 WHERE id = $3",
                                   status, now, campaign)
                if status == "cancelled":
                    await conn.execute("UPDATE campaign_recipients SET status = 'skipped', reason = 'cancelled'"
                                       " WHERE campaign = $1 AND status = 'pending'", campaign)
            return str(before)

    async def report(self, campaign: int) -> dict[str, Any] | None:
        head = await self.pool.fetchrow(
            "SELECT id, name, template, language, status, created_at, updated_at FROM campaigns WHERE id = $1",
            campaign)
        if head is None:
            return None
        outcomes = await self.pool.fetch(
            "SELECT r.status, r.reason, o.status, o.error_code, o.sending FROM campaign_recipients r"
            " LEFT JOIN outbox o ON o.id = r.outbox_id WHERE r.campaign = $1", campaign)
        replies = await self.pool.fetchval(
            "SELECT COUNT(DISTINCT i.customer) FROM inbox i JOIN campaign_recipients r"
            " ON r.customer = i.customer AND r.campaign = $1 AND r.status = 'queued' WHERE i.received_at >= $2",
            campaign, head["created_at"])
        return summary({**dict(head), "id": int(head["id"])}, [tuple(r) for r in outcomes], int(replies))
