"""Campaigns' queries: recipients kept, handed to the outbox a few at a time, and the report."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from wabot.db.areas import Recipient, Skip
from wabot.db.sql import Row, _queue, transaction

__all__ = ["add", "feed", "interrupted", "once_ids", "report", "running", "sending", "set_status", "summary"]

CLAIMS_PER_STATEMENT = 500  # well under SQLite's limit on a statement's parameters (999 before 3.32)


def add(
    conn: sqlite3.Connection, name: str, template: str, language: str, recipients: list[Recipient],
    invalid: list[Skip], now: float,
) -> tuple[int, int]:
    """A new running campaign; (its id, duplicates skipped). Invalid rows are kept as skipped, to be counted."""
    with transaction(conn):
        cid = int(conn.execute(
            "INSERT INTO campaigns (name, template, language, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
            " RETURNING id", (name, template, language, now, now)).fetchone()[0])
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
        rows += [(cid, -len(rows) - i, "", "[]", "skipped", reason) for i, (_, reason) in enumerate(invalid, start=1)]
        conn.executemany(
            "INSERT INTO campaign_recipients (campaign, row, customer, params, status, reason)"
            " VALUES (?, ?, ?, ?, ?, ?)", rows)
    return cid, duplicates


def running(conn: sqlite3.Connection) -> list[tuple[int, str, str]]:
    """(id, template, language) of the campaigns sending now, oldest first."""
    return [(int(i), t, lang) for i, t, lang in conn.execute(
        "SELECT id, template, language FROM campaigns WHERE status = 'running' ORDER BY id")]


def feed(
    conn: sqlite3.Connection, campaign: int, limit: int, now: float,
    bodies: Callable[[str, list[str]], dict[str, Any]],
) -> tuple[list[Row], bool]:
    """Queue up to `limit` pending recipients to the outbox (opted-out ones skipped), in one commit.

    `bodies(customer, params)` builds each Graph body. Returns (the queued rows, whether any remain).
    """
    with transaction(conn):
        pending = conn.execute(
            "SELECT r.row, r.customer, r.params, c.opted_out_at FROM campaign_recipients r"
            " LEFT JOIN conversations c ON c.customer = r.customer"
            " WHERE r.campaign = ? AND r.status = 'pending' ORDER BY r.row LIMIT ?", (campaign, limit)).fetchall()
        conn.executemany("UPDATE campaign_recipients SET status = 'skipped', reason = 'opted out'"
                         " WHERE campaign = ? AND row = ?",
                         [(campaign, row) for row, _, _, out in pending if out is not None])
        queued: list[Row] = []
        marks: list[tuple[int, int, int]] = []
        for row, customer, params, out in pending:
            if out is None:
                queued += _queue(conn, customer, [bodies(customer, json.loads(params))], None, now, once=True)
                marks.append((queued[-1][0], campaign, row))
        conn.executemany("UPDATE campaign_recipients SET status = 'queued', outbox_id = ?"
                         " WHERE campaign = ? AND row = ?", marks)
        more = len(pending) == limit
        if not more:
            conn.execute("UPDATE campaigns SET status = 'done', updated_at = ? WHERE id = ? AND status = 'running'",
                         (now, campaign))
    return queued, more


def once_ids(conn: sqlite3.Connection) -> set[int]:
    """The queued outbox rows that must go out at most once (campaign messages)."""
    return {int(i) for (i,) in conn.execute("SELECT id FROM outbox WHERE status = 'queued' AND once = 1")}


def sending(conn: sqlite3.Connection, row_ids: list[int], now: float) -> set[int]:
    """Committed just before the Graph calls of at-most-once rows: those claimed now (not those claimed before)."""
    claimed: set[int] = set()
    with transaction(conn):
        for at in range(0, len(row_ids), CLAIMS_PER_STATEMENT):
            chunk = row_ids[at:at + CLAIMS_PER_STATEMENT]
            claimed.update(i for (i,) in conn.execute(
                f"UPDATE outbox SET sending = 1, updated_at = ? WHERE id IN ({','.join('?' * len(chunk))})"
                " AND sending = 0 AND status = 'queued' RETURNING id", (now, *chunk)))
    return claimed


def interrupted(conn: sqlite3.Connection, now: float, quiet_for: float) -> int:
    """At start-up: at-most-once rows a crash caught mid-send are failed, not sent again; how many."""
    with transaction(conn):
        return conn.execute(
            "UPDATE outbox SET status = 'failed', updated_at = ?, error = 'wabot stopped while sending it; not sent"
            " again, so the customer never gets it twice (Meta may have delivered it)'"
            " WHERE status = 'queued' AND once = 1 AND sending = 1 AND updated_at <= ?",
            (now, now - quiet_for)).rowcount


def set_status(conn: sqlite3.Connection, campaign: int, status: str, now: float) -> str | None:
    """Pause, resume or cancel; the status before (None: no such campaign). A finished campaign stays finished."""
    with transaction(conn):
        row = conn.execute("SELECT status FROM campaigns WHERE id = ?", (campaign,)).fetchone()
        if row is None:
            return None
        if row[0] in ("running", "paused"):
            conn.execute("UPDATE campaigns SET status = ?, updated_at = ? WHERE id = ?", (status, now, campaign))
        if status == "cancelled" and row[0] in ("running", "paused"):
            conn.execute("UPDATE campaign_recipients SET status = 'skipped', reason = 'cancelled'"
                         " WHERE campaign = ? AND status = 'pending'", (campaign,))
        return str(row[0])


def report(conn: sqlite3.Connection, campaign: int) -> dict[str, Any] | None:
    """What happened: recipients by outcome, failures by Meta's code, replies received since it started."""
    head = conn.execute("SELECT id, name, template, language, status, created_at, updated_at FROM campaigns"
                        " WHERE id = ?", (campaign,)).fetchone()
    if head is None:
        return None
    outcomes = conn.execute(
        "SELECT r.status, r.reason, o.status, o.error_code, o.sending FROM campaign_recipients r"
        " LEFT JOIN outbox o ON o.id = r.outbox_id WHERE r.campaign = ?", (campaign,)).fetchall()
    replies = conn.execute(
        "SELECT COUNT(DISTINCT i.customer) FROM inbox i JOIN campaign_recipients r"
        " ON r.customer = i.customer AND r.campaign = ? AND r.status = 'queued' WHERE i.received_at >= ?",
        (campaign, head[5])).fetchone()[0]
    keys = ("id", "name", "template", "language", "status", "created_at", "updated_at")
    return summary(dict(zip(keys, head, strict=True)), outcomes, int(replies))


def summary(head: dict[str, Any], outcomes: Iterable[tuple[Any, ...]], replies: int) -> dict[str, Any]:
    """The report from the campaign's row, each recipient's (status, reason, outbox status, Meta code, sending)
    and how many recipients wrote back (both stores count the same way)."""
    states: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for status, reason, sent, code, sending in outcomes:
        if status == "skipped":
            skipped[str(reason)] += 1
            continue
        state = sent or status  # pending, or the outbox's queued/sent/delivered/read/failed
        if state == "failed" and code is None and sending:
            state = "unknown"  # interrupted mid-send (see `interrupted`): Meta may or may not have it
        states["read" if state == "played" else state] += 1
        if state == "failed":
            failed[str(code)] += 1
    # cumulative, as a marketer reads them: a read message was also delivered and sent
    counts = {"waiting": states["pending"] + states["queued"], "sent": states["sent"] + states["delivered"]
              + states["read"], "delivered": states["delivered"] + states["read"], "read": states["read"],
              "failed": states["failed"], "unknown": states["unknown"]}
    return {**head, "recipients": sum(states.values()) + sum(skipped.values()),
            **counts, "failed_by_code": dict(failed), "skipped": dict(skipped), "replied": replies}
