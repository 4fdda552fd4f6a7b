"""`wabot campaign send|show|pause|resume|cancel`: campaigns written straight into the database.

The running server (server/campaigns.py) picks a new campaign up within a second and sends it at the outbox's
pace; `send` follows it with a progress bar until every recipient is done, so the command can be stopped and
started again freely: the campaign goes on in the server either way.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from wabot.config import Settings
from wabot.db import pgsql
from wabot.db.base import DB_ERRORS, open_database
from wabot.errors import DatabaseError
from wabot.whatsapp import numbers

__all__ = ["read_csv", "report_lines", "send", "show", "switch"]

BAR = 30  # characters of the progress bar
QUIET = 10.0  # seconds without progress before saying the server may not be running


class CsvError(Exception):
    """The recipients' file cannot be used; the message says why and what to do."""


def read_csv(path: Path) -> tuple[list[tuple[str, list[str]]], list[tuple[int, str]]]:
    """(recipients, skipped rows) from a CSV with a header: `to`, then the template's body parameters in order."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:  # -sig: Excel's "CSV UTF-8" starts with a BOM
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise CsvError(f"{path} cannot be read ({exc}); save it as CSV UTF-8.") from None
    if not rows or "to" not in [h.strip().lower() for h in rows[0]]:
        raise CsvError(f"{path} needs a header row with a column named 'to' (the numbers), then one column per "
                       "template parameter, in order: to,code,carrier")
    header = [h.strip().lower() for h in rows[0]]
    at = header.index("to")
    recipients: list[tuple[str, list[str]]] = []
    skipped: list[tuple[int, str]] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        number = numbers.normalise(row[at]) if at < len(row) else None
        if number is None:
            skipped.append((line, "invalid number"))
            continue
        recipients.append((number, [c.strip() for i, c in enumerate(row) if i != at]))
    return recipients, skipped


def send(settings: Settings, *, template: str, language: str, path: Path, name: str, wait: bool,
         out: TextIO = sys.stdout) -> int:
    """Create the campaign, then (with `wait`) follow it; 0 when it is created (and done), 2 when it cannot be."""
    try:
        recipients, skipped = read_csv(path)
    except CsvError as err:
        print(f"wabot: {err}", file=sys.stderr)
        return 2
    if not recipients:
        print(f"wabot: {path} has no valid numbers ({len(skipped)} invalid); nothing to send.", file=sys.stderr)
        return 2
    cid, duplicates = _run(settings, lambda s: s.campaigns.add(
        name=name or path.stem, template=template, language=language, recipients=recipients, invalid=skipped,
        now=time.time()))
    print(f"Campaign {cid}: {len(recipients) - duplicates} recipients, {len(skipped)} invalid numbers and "
          f"{duplicates} duplicates skipped. The running server sends it at outbox.rate_per_second.", file=out)
    if not wait:
        print(f"Follow it with: wabot campaign show {cid}", file=out)
        return 0
    return _follow(settings, cid, out)


def _follow(settings: Settings, cid: int, out: TextIO) -> int:
    tty = sys.stderr.isatty()
    last, moved = -1, time.monotonic()
    try:
        while True:
            report = _run(settings, lambda s: s.campaigns.report(cid))
            assert report is not None
            done = report["sent"] + report["failed"] + report["unknown"]
            total = done + report["waiting"]
            if done != last:
                last, moved = done, time.monotonic()
            if tty:
                filled = BAR * done // max(1, total)
                print(f"\r[{'#' * filled}{'-' * (BAR - filled)}] {done}/{total} sent, {report['failed']} failed",
                      end="", file=sys.stderr, flush=True)
            if (report["status"] != "running" and report["waiting"] == 0) or report["status"] == "cancelled":
                break
            if time.monotonic() - moved > QUIET:
                print(f"\nwabot: nothing sent for {QUIET:g} s: is `python -m wabot` running? The campaign waits in "
                      "the database and goes on when the server runs.", file=sys.stderr)
                moved = time.monotonic()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print(f"\nStopped following; the campaign goes on in the server. wabot campaign show {cid}", file=out)
        return 0
    if tty:
        print(file=sys.stderr)
    for line in report_lines(report):
        print(line, file=out)
    return 0


def show(settings: Settings, cid: int, *, form: str, out: TextIO = sys.stdout) -> int:
    """The report as text, JSON or CSV; 1 when there is no such campaign."""
    report = _run(settings, lambda s: s.campaigns.report(cid))
    if report is None:
        print(f"wabot: there is no campaign {cid}.", file=sys.stderr)
        return 1
    if form == "json":
        print(json.dumps(report, ensure_ascii=False, indent=1), file=out)
    elif form == "csv":
        flat = {k: v for k, v in report.items() if not isinstance(v, dict)}
        flat.update({f"failed_{k}": v for k, v in report["failed_by_code"].items()})
        flat.update({f"skipped_{k.replace(' ', '_')}": v for k, v in report["skipped"].items()})
        writer = csv.writer(out)
        writer.writerow(flat.keys())
        writer.writerow(flat.values())
    else:
        for line in report_lines(report):
            print(line, file=out)
    return 0


def switch(settings: Settings, cid: int, action: str, *, out: TextIO = sys.stdout) -> int:
    """pause | resume | cancel; 1 when there is no such campaign or it already finished."""
    status = {"pause": "paused", "resume": "running", "cancel": "cancelled"}[action]
    before = _run(settings, lambda s: s.campaigns.set_status(cid, status, now=time.time()))
    if before is None:
        print(f"wabot: there is no campaign {cid}.", file=sys.stderr)
        return 1
    if before not in ("running", "paused"):
        print(f"wabot: campaign {cid} is {before}; it can no longer be changed.", file=sys.stderr)
        return 1
    print(f"Campaign {cid} {status}.", file=out)
    return 0


def report_lines(r: dict[str, Any]) -> list[str]:
    failed = ", ".join(f"{n} with Meta error {code}" for code, n in r["failed_by_code"].items())
    skipped = ", ".join(f"{n} {why}" for why, n in r["skipped"].items())
    return [
        f"Campaign {r['id']} ({r['name']}): template {r['template']} ({r['language']}), {r['status']}",
        f"  recipients {r['recipients']}: waiting {r['waiting']}, sent {r['sent']}, delivered {r['delivered']}, "
        f"read {r['read']}, failed {r['failed']}" + (f" ({failed})" if failed else ""),
        *([f"  unknown: {r['unknown']} (wabot was stopped while sending them; not sent again, Meta may have them)"]
          if r["unknown"] else []),
        f"  skipped: {skipped or 'none'}",
        f"  replied: {r['replied']} customers wrote back",
    ]


def _run(settings: Settings, call: Any) -> Any:
    async def go() -> Any:
        store = await open_database(settings.database_target, synchronous=settings.synchronous)
        try:
            return await call(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except DatabaseError as exc:
        print(f"wabot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except DB_ERRORS as exc:
        print(f"wabot: the database {pgsql.shown(settings.database_target)} cannot be used: {exc}.", file=sys.stderr)
        raise SystemExit(2) from None
