"""The console's queries about conversations: search, one conversation's messages, and the numbers page.

Plain functions over a sqlite3 connection, run through `Store.call`. Every list is bounded, and the
numbers read indexed columns or the small tables the console keeps (visits, stops, misses), so pages
stay fast with hundreds of thousands of stored conversations (bench/console_pages.py).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from typing import Any

from wabot.db import sql
from wabot.db.areas import Found
from wabot.text import loose

__all__ = [
    "by_day", "failed_replies", "funnel", "media", "messages", "name_glob", "not_understood", "number_forms",
    "overview", "record_turns", "search",
]


_DIGITS = re.compile(r"\D")
_NUMBER = re.compile(r"\+?[\d\s().-]{3,}")


def number_forms(query: str) -> str | None:
    """The digits to look for when `query` is a phone number in any form (0912…, +84 912…, 84912…)."""
    if not _NUMBER.fullmatch(query.strip()):
        return None
    digits = _DIGITS.sub("", query)
    return "84" + digits[1:] if digits.startswith("0") else digits


def name_glob(query: str) -> str:
    """`query` as a GLOB pattern (SQLite) forgiving case and Vietnamese diacritics: "Duc" -> "[dDđĐ..][uU..][cC]"."""
    return "".join(f"[{c}]" if len(c) > 1 or c in "*?[" else c for c in loose(query))


def search(conn: sqlite3.Connection, query: str, limit: int = 50) -> list[Found]:
    """Conversations whose number, name or saved variables match `query`; the latest first."""
    columns = "customer, contact, status, state, updated_at, opted_out_at"
    query = query.strip()
    if not query:
        rows = conn.execute(f"SELECT {columns} FROM conversations ORDER BY updated_at DESC LIMIT ?",
                            (limit,)).fetchall()
    elif (number := number_forms(query)) is not None:
        rows = conn.execute(f"SELECT {columns} FROM conversations NOT INDEXED WHERE customer LIKE ?"
                            " ORDER BY updated_at DESC LIMIT ?", (f"%{number}%", limit)).fetchall()
    else:
        # a scan of the stored JSON, but a fast one: the name in contact by GLOB, each letter a class of its cases
        # and diacritics ("duc" finds "Đức"), the saved variables by LIKE (ASCII letters in any case). 100,000
        # conversations, load 3: 120 ms (LIKE on both: 45 ms, but "đức" missed "Đức"; GLOB on both: 190 ms);
        # parsing the JSON per row took a second, and walking the rows in updated_at order through its index ten
        # times as long as a scan; hence NOT INDEXED
        like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = conn.execute(
            f"SELECT {columns} FROM conversations NOT INDEXED WHERE contact GLOB ? OR state LIKE ?"
            " ESCAPE '\\' ORDER BY updated_at DESC LIMIT ?",
            # in state, only the saved variables (State.to_json writes "vars" just before "stack"), so that
            # a search for "mai" does not find every conversation in the flow "main"
            (f'*"name": "*{name_glob(query)}*', f'%"vars": {like}"stack": %', limit),
        ).fetchall()
    found: list[Found] = []
    for customer, contact, status, state, updated, opted in rows:
        s = json.loads(state)
        found.append((customer, json.loads(contact or "{}").get("name"), status, s.get("flow", ""),
                      s.get("step", ""), float(updated), opted is not None))
    return found


def messages(conn: sqlite3.Connection, customer: str, limit: int) -> list[tuple[Any, ...]]:
    """The latest messages both ways, oldest first: (at, "in"|"out", payload, status, error, agent, id)."""
    rows = conn.execute(
        "SELECT * FROM (SELECT received_at AS at, 'in', message, 'done', NULL, NULL, seq AS n FROM inbox"
        " WHERE customer = ? UNION ALL SELECT created_at, 'out', body, status, error, agent, id FROM outbox"
        " WHERE customer = ? ORDER BY at DESC, n DESC LIMIT ?) ORDER BY at, n",
        (customer, customer, limit),
    ).fetchall()
    return [tuple(r) for r in rows]


def record_turns(conn: sqlite3.Connection, turns: Iterable[tuple[str, str, str, bool, str, float]]) -> None:
    """(customer, flow, step, missed, text, at) after each turn: where customers reached and stopped, misses."""
    with sql.transaction(conn):
        for customer, flow, step, missed, text, at in turns:
            if flow:
                conn.execute("INSERT INTO visits (customer, flow, step, at) VALUES (?, ?, ?, ?)"
                             " ON CONFLICT DO UPDATE SET at = excluded.at", (customer, flow, step, at))
                conn.execute("INSERT INTO stops (customer, flow, step, at) VALUES (?, ?, ?, ?) ON CONFLICT"
                             " DO UPDATE SET flow = excluded.flow, step = excluded.step, at = excluded.at",
                             (customer, flow, step, at))
            else:
                conn.execute("DELETE FROM stops WHERE customer = ?", (customer,))
            if missed and text.strip():
                conn.execute("INSERT INTO misses (customer, flow, step, text, at) VALUES (?, ?, ?, ?, ?)",
                             (customer, flow, step, text.strip()[:500], at))


def by_day(conn: sqlite3.Connection, since: float, offset: float, days: int) -> list[tuple[str, int, int]]:
    """(day, messages in, messages out) for the last `days` days in the bot's time zone (`offset` from UTC).

    One indexed range count per day and direction: grouping every row by its date read them all (0.7 s for
    400,000 messages)."""
    first = (since + offset) // 86400 * 86400 - offset  # midnight, local time
    out: list[tuple[str, int, int]] = []
    for n in range(days, -1, -1):
        start = first + n * 86400
        end = start + 86400
        got_in = conn.execute("SELECT COUNT(*) FROM inbox WHERE received_at >= ? AND received_at < ? AND done = 1"
                              " AND message_id NOT LIKE 'wabot:start:%'",
                              (start, end)).fetchone()[0]
        got_out = conn.execute("SELECT COUNT(*) FROM outbox WHERE created_at >= ? AND created_at < ?",
                               (start, end)).fetchone()[0]
        if got_in or got_out:
            day = conn.execute("SELECT date(? + ?, 'unixepoch')", (start, offset)).fetchone()[0]
            out.append((day, int(got_in), int(got_out)))
    return out


def overview(conn: sqlite3.Connection, now: float, active_within: float) -> dict[str, Any]:
    """Active conversations, who waits for a person and for how long, total conversations."""
    active = conn.execute("SELECT COUNT(*) FROM conversations WHERE updated_at >= ? AND status != 'idle'",
                          (now - active_within,)).fetchone()[0]
    waiting, oldest, average = conn.execute(
        "SELECT COUNT(*), MIN(handoff_at), AVG(? - handoff_at) FROM conversations WHERE status = 'handoff'", (now,)
    ).fetchone()
    total = conn.execute("SELECT MAX(rowid) FROM conversations").fetchone()[0] or 0
    handed = conn.execute("SELECT COUNT(*) FROM staff_actions WHERE action = 'resume'").fetchone()[0]
    return {"active": int(active), "waiting": int(waiting), "longest_wait": now - oldest if oldest else 0.0,
            "average_wait": float(average or 0.0), "conversations": int(total), "given_back": int(handed)}


def failed_replies(conn: sqlite3.Connection, limit: int = 20) -> list[tuple[int | None, str, int]]:
    """Replies Meta refused, grouped by its error: (code, reason, how many), most frequent first."""
    rows = conn.execute(
        "SELECT error_code, COALESCE(error, '?'), COUNT(*) FROM outbox INDEXED BY outbox_failed WHERE status = 'failed'"
        " GROUP BY 1, 2 ORDER BY 3 DESC LIMIT ?", (limit,)).fetchall()
    return [(code, reason, int(n)) for code, reason, n in rows]


def funnel(conn: sqlite3.Connection) -> dict[tuple[str, str], tuple[int, int]]:
    """(flow, step) -> (customers who reached it, customers whose conversation stands there now)."""
    reached = {(f, s): int(n) for f, s, n in conn.execute("SELECT flow, step, COUNT(*) FROM visits GROUP BY 1, 2")}
    stopped = {(f, s): int(n) for f, s, n in conn.execute("SELECT flow, step, COUNT(*) FROM stops GROUP BY 1, 2")}
    return {k: (reached.get(k, 0), stopped.get(k, 0)) for k in reached.keys() | stopped.keys()}


def not_understood(conn: sqlite3.Connection, limit: int = 50) -> list[tuple[str, int, str]]:
    """Texts the bot did not understand, most frequent first: (text, times, where: flow/step of the latest)."""
    rows = conn.execute(
        "SELECT MAX(text), COUNT(*), MAX(flow || '/' || step) FROM misses GROUP BY lower(text)"
        " ORDER BY 2 DESC, MAX(id) DESC LIMIT ?", (limit,)).fetchall()
    return [(t, int(n), where) for t, n, where in rows]


def media(conn: sqlite3.Connection, media_id: str) -> list[str]:
    """The latest inbound messages (JSON text) whose text holds `media_id` (the console checks which one has it)."""
    rows = conn.execute("SELECT message FROM inbox WHERE instr(message, ?) > 0 ORDER BY seq DESC LIMIT 20",
                        (f'"{media_id}"',))
    return [str(text) for (text,) in rows]
