"""The history purge on SQLite: old rows deleted in short batches by a worker thread that never stalls the loop.

Where the stalls came from (issue 15, bench/purge.py), and what this module does about each:
- one transaction for millions of rows held the loop for seconds: batches, each in its own transaction;
- the batches' commits waited for the disk: this connection did not share the server's `synchronous=NORMAL`
  (SQLite's default is FULL), so every batch synced the WAL while holding the gate the server's
  transactions wait on. The purge's commits never need to survive a power cut: a purge lost is redone
  within the hour; so NORMAL always, whatever database.synchronous says;
- the WAL the deletes grow was checkpointed by whichever connection committed past 1,000 pages — often
  the server's, on the loop, syncing the disk there: the store turns the server's automatic checkpoints
  off for the purge's length, and this thread checkpoints (PASSIVE: blocks no writer) outside the gate,
  when the server has been quiet for a moment, or anyway after a while. A busy server writes during such a
  checkpoint, and even when the checkpoint copied everything the WAL did not start over: it grew to 4.8 GB in
  a bench run. Past `wal_pages` of WAL, the thread holds the gate for a RESTART checkpoint (a short one: the
  bulk was copied just before; ~40 ms), after which the next writer starts the WAL over;
- a fixed number of rows made some batches long: a batch's size follows its time (`Pacing.budget`),
  and the thread waits before each batch while the server is working.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass

__all__ = ["PURGES", "Pacing", "purge_apart", "purge_batch"]

PURGES = (  # finished history, oldest first, through the indexes of migration 2
    "DELETE FROM inbox WHERE seq IN (SELECT seq FROM inbox WHERE done = 1 AND received_at < ? LIMIT ?)",
    "DELETE FROM outbox WHERE id IN"
    " (SELECT id FROM outbox WHERE status != 'queued' AND updated_at < ? LIMIT ?)",
    "DELETE FROM statuses WHERE rowid IN (SELECT rowid FROM statuses WHERE timestamp < ? LIMIT ?)",
)


def purge_batch(conn: sqlite3.Connection, which: int, before: float, limit: int) -> int:
    """Delete up to `limit` rows older than `before` with PURGES[which], in one short transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        removed = int(conn.execute(PURGES[which], (before, limit)).rowcount)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return removed


@dataclass(slots=True)
class Pacing:
    """How the purge thread shares the database with the server (the store sets `busy_at`)."""

    batch: int = 250  # the most rows a batch deletes
    budget: float = 0.004  # seconds a batch may hold the gate: the size shrinks or grows to fit
    pause: float = 0.01  # seconds between two batches, at least
    rest: float = 3.0  # and at least this many times the batch's own time: the thread takes a quarter of a core at
    # most, the server the rest (on a loaded machine the purge's CPU pushed a server near saturation over)
    quiet: float = 0.005  # the server counts as quiet this long after its last transaction ended
    patience: float = 0.02  # the longest a batch waits for a quiet moment (a saturated server is never quiet)
    floor: int = 50  # the fewest rows a batch deletes, however slow (a starved machine must still finish)
    checkpoint_quiet: float = 0.25  # a checkpoint, when quiet, at most this often (each one syncs the disk)
    checkpoint_every: float = 2.0  # and, quiet or not, at least this often: the WAL stays small
    wal_pages: int = 16384  # 64 MB of WAL: past this, the WAL is made to start over, the server held off
    busy_at: float = 0.0  # time.monotonic() when the server's last transaction ended (0: working now)


def _wait_quiet(pacing: Pacing, stop: threading.Event, *, longest: float) -> bool:
    """Sleep until the server has been quiet for `pacing.quiet`, at most `longest`; True when it is quiet."""
    deadline = time.monotonic() + longest
    while True:
        idle = time.monotonic() - pacing.busy_at if pacing.busy_at else 0.0
        if idle >= pacing.quiet:
            return True
        left = deadline - time.monotonic()
        if left <= 0 or stop.is_set():
            return False
        time.sleep(min(left, pacing.quiet - idle if pacing.busy_at else 0.001))


def purge_apart(path: str, before: float, *, pacing: Pacing, stop: threading.Event, gate: threading.Lock) -> int:
    """The whole purge on a connection of its own, for a worker thread: rows deleted (until `stop` is set).

    Each batch holds `gate`, the lock the server's own transactions take without blocking the loop, so the two
    never wait on SQLite's lock (whose waiting is unfair: the thread won the race again and again, for seconds).
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")  # this thread may wait for another program; the server does not
    conn.execute("PRAGMA synchronous=NORMAL")  # see the module's docstring
    conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints below, outside the gate
    total, limit = 0, pacing.batch
    checkpointed = time.monotonic()
    try:
        for which in range(len(PURGES)):
            while not stop.is_set():
                _wait_quiet(pacing, stop, longest=pacing.patience)
                with gate:
                    started = time.monotonic()
                    removed = purge_batch(conn, which, before, limit)
                    took = time.monotonic() - started
                total += removed
                if removed < limit:
                    break
                if took > pacing.budget:
                    limit = max(min(pacing.floor, pacing.batch), int(limit * pacing.budget / took))
                elif took < pacing.budget / 2:
                    limit = min(pacing.batch, limit * 2)
                since = time.monotonic() - checkpointed
                if since > pacing.checkpoint_every or (
                    since > pacing.checkpoint_quiet and _wait_quiet(pacing, stop, longest=0)
                ):
                    checkpoint(conn, gate, wal_pages=pacing.wal_pages)
                    checkpointed = time.monotonic()
                time.sleep(max(pacing.pause, took * pacing.rest))
        if not stop.is_set():
            checkpoint(conn, gate, wal_pages=pacing.wal_pages)
    finally:
        conn.close()
    return total


def checkpoint(conn: sqlite3.Connection, gate: threading.Lock, *, wal_pages: int) -> None:
    """Copy the WAL into the database file; past `wal_pages` of WAL, make it start over, with the gate held."""
    _, log, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()  # blocks no writer
    if log > wal_pages:  # complete or not, the WAL did not start over while the server wrote (measured)
        with gate:  # RESTART: the next writer starts the WAL over; ~40 ms (a sync) on a loaded machine
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
