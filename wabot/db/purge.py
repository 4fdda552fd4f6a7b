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
  a bench run. A RESTART checkpoint with the gate held made it start over, but held the server 30-100 ms
  each time, the first cause of the slow webhooks left (2026-12-01, traced): `Checkpoints` makes the WAL start
  over holding the server off only to copy its last few pages, if at all;
- a fixed number of rows made some batches long: a batch's size follows its time (`Pacing.budget`: 2 ms, 250
  rows at 2-12 µs a row in the bench, fewer on a loaded machine), and the thread waits before each batch
  while the server is working.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass

__all__ = ["PURGES", "Checkpoints", "Pacing", "purge_apart", "purge_batch"]

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
    budget: float = 0.002  # seconds a batch may hold the gate: the size shrinks or grows to fit
    pause: float = 0.002  # seconds between two batches, at least
    rest: float = 3.0  # and at least this many times the batch's own time: the thread holds the gate a quarter of
    # the time at most, the server the rest (on a loaded machine the purge's CPU pushed a server near saturation over)
    quiet: float = 0.005  # the server counts as quiet this long after its last transaction ended
    patience: float = 0.02  # the longest a batch waits for a quiet moment (a saturated server is never quiet)
    floor: int = 10  # the fewest rows a batch deletes, however slow (a starved machine must still finish)
    checkpoint_quiet: float = 0.25  # a checkpoint, when quiet, at most this often (each one syncs the disk)
    checkpoint_every: float = 2.0  # and, quiet or not, at least this often: the WAL stays small
    wal_pages: int = 16384  # 64 MB of WAL: past this, the checkpoints make it start over (class Checkpoints)
    copies: int = 3  # checkpoints tried outside the gate for that, before one with the gate held
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
    wal = Checkpoints(conn, gate, pacing, stop)
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
                limit = resize(pacing, limit, took)
                if wal.due():
                    wal.checkpoint()
                time.sleep(max(pacing.pause, took * pacing.rest))
        if not stop.is_set():
            wal.checkpoint()
    finally:
        conn.close()
    return total


def resize(pacing: Pacing, limit: int, took: float) -> int:
    """The next batch's size: smaller when this one held the gate longer than the budget, larger when far shorter."""
    if took > pacing.budget:
        return max(min(pacing.floor, pacing.batch), int(limit * pacing.budget / took))
    if took < pacing.budget / 2:
        return min(pacing.batch, limit * 2)
    return limit


class Checkpoints:
    """The purge thread's WAL checkpoints: PASSIVE (blocking no writer), outside the gate but for a few pages.

    The WAL starts over when a transaction begins while every frame in it is in the database file. A checkpoint
    running beside the server's commits ends one step behind them when the server wrote while it copied
    (`PRAGMA data_version` tells). So past `wal_pages` more checkpoints follow, at quiet moments, each copying
    what the server wrote during the last (a few pages, quick); when it wrote during every one of `copies`, a last
    one copies its few pages with the gate held. Either way the next writer starts the WAL over. (SQLite's
    RESTART checkpoint, with the gate held, did the same but held the server 30-100 ms in the bench.)
    """

    def __init__(self, conn: sqlite3.Connection, gate: threading.Lock, pacing: Pacing, stop: threading.Event
                 ) -> None:
        self.conn, self.gate, self.pacing, self.stop = conn, gate, pacing, stop
        self.at = time.monotonic()  # when the last one ran
        self.held = 0  # checkpoints made with the gate held (tests read it)

    def due(self) -> bool:
        since = time.monotonic() - self.at
        return since > self.pacing.checkpoint_every or (
            since > self.pacing.checkpoint_quiet and _wait_quiet(self.pacing, self.stop, longest=0))

    def checkpoint(self) -> None:
        for attempt in range(self.pacing.copies):
            if attempt:  # the next copies only what the server wrote during the last: best when it is quiet
                _wait_quiet(self.pacing, self.stop, longest=self.pacing.patience)
            if self.copy():
                break
        else:  # the server wrote during every one: copy its last few pages while it waits
            with self.gate:
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.held += 1
        self.at = time.monotonic()

    def copy(self) -> bool:
        """One checkpoint; True when the WAL is small, or was copied whole and nobody wrote meanwhile."""
        version = self._version()
        _, frames, copied = self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return frames <= self.pacing.wal_pages or (copied == frames and version == self._version())

    def _version(self) -> int:
        """A number SQLite changes whenever another connection has committed since this one last looked."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])
