"""The webhook's answer time while the hourly retention purge deletes millions of rows (issue 15).

    python3 -m bench.purge                      # 2,000,000 old rows, webhooks at 100/s during the purge
    python3 -m bench.purge --rows 200000 --rate 50

The real server (a subprocess) starts on a database holding `--rows` history rows older than the
retention period, so its purge begins at start-up; signed webhooks go in at `--rate` per second
until the server logs the purge's end, and a few seconds after. Passes when the p99 answer time of
the webhooks sent during the purge stays under 50 ms.

First, as the baseline of the same run (the machine is shared: its load changes from minute to minute),
the same server on the same database with a retention period that keeps every row (no purge) takes the
same webhooks for `--baseline` seconds: what the purge adds is the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

from .load import Customer, customer_ids, sign, webhook_body
from .run import FakeGraph
from .server import SECRET, Server
from .walk import Typed

TARGET_P99 = 0.050  # seconds


def fill(db: Path, rows: int, *, at: float) -> None:
    """`rows` finished history rows stored at `at`: inbound messages, replies, delivery statuses, a third each."""
    from wabot.db.store import Store

    async def migrate() -> None:
        store = await Store.open(db)
        await store.close()

    asyncio.run(migrate())
    third = rows // 3
    with contextlib.closing(sqlite3.connect(db)) as con:
        series = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        con.execute(f"{series} INSERT INTO inbox (message_id, customer, message, received_at, done)"
                    " SELECT 'wamid.old.' || i, '849' || (10000000 + i % 5000), '{}', ?, 1 FROM n", (third, at))
        con.execute(f"{series} INSERT INTO outbox (customer, body, status, wamid, created_at, updated_at)"
                    " SELECT '849' || (10000000 + i % 5000), '{\"type\":\"text\"}', 'delivered', 'wamid.out.' || i,"
                    " ?, ? FROM n", (third, at, at))
        con.execute(f"{series} INSERT INTO statuses (wamid, status, timestamp, recipient)"
                    " SELECT 'wamid.out.' || i, 'delivered', ?, '849' || (10000000 + i % 5000) FROM n",
                    (rows - 2 * third, int(at)))
    con.close()


async def post(session: aiohttp.ClientSession, url: str, body: bytes, times: list[tuple[float, float]],
               failed: list[str]) -> None:
    """One signed webhook: its answer time in `times`, or what went wrong in `failed` (a 503, a timeout)."""
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers={"X-Hub-Signature-256": sign(SECRET, body),
                                                         "Content-Type": "application/json"}) as resp:
            await resp.read()
            if resp.status != 200:
                failed.append(f"HTTP {resp.status}")
                return
    except (TimeoutError, aiohttp.ClientError) as exc:
        failed.append(type(exc).__name__)
        return
    times.append((started, time.perf_counter() - started))


async def load(server: Server, *, rate: float, after: float, duration: float | None = None,
               first: int = 0, limit: float = 900) -> tuple[list[tuple[float, float]], float, float]:
    """Webhooks at `rate` until the purge's log line and `after` seconds more: (times, purge start, purge end).

    With `duration`, for that many seconds whatever the log says (the baseline); `first` numbers the messages.
    """
    url = server.url + "/webhook/whatsapp"
    times: list[tuple[float, float]] = []
    failed: list[str] = []
    wal = 0
    customers = customer_ids(100_000, start=900_000 + first)
    began = time.perf_counter()
    ended: float | None = None
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession() as session:
        for k in range(10**9):
            due = began + k / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            body = webhook_body(Customer(customers[k % len(customers)], "Khách"), Typed("xin chào"),
                                wamid=f"wamid.bench.purge.{first + k}", timestamp=int(time.time()))
            task = asyncio.create_task(post(session, url, body, times, failed))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if k % 50 == 0:
                with contextlib.suppress(OSError):
                    wal = max(wal, server.db.with_name(server.db.name + "-wal").stat().st_size)
            if duration is not None:
                if time.perf_counter() - began > duration:
                    ended = time.perf_counter()
                    break
            elif ended is None and k % 10 == 0 and "history rows older than" in server.tail(200):
                ended = time.perf_counter()
            if ended is not None and time.perf_counter() - ended > after:
                break
            if ended is None and time.perf_counter() - began > limit:
                print(f"the purge did not end within {limit:g} s: measured until now")
                ended = time.perf_counter()
                break
        await asyncio.gather(*tasks)
    print(f"the WAL file grew to {wal / 2**20:.0f} MB at most")
    if failed:
        print(f"{len(failed)} webhooks failed: " + ", ".join(f"{failed.count(f)} {f}" for f in sorted(set(failed))))
    return times, began, ended or began


def configure(server: Server, *, retention_days: float) -> None:
    raw = yaml.safe_load(server.config.read_text(encoding="utf-8"))
    raw["history"]["retention_days"] = retention_days
    raw["logging"]["level"] = "INFO"  # the purge logs its end at INFO
    server.config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")


def summary(name: str, part: list[float]) -> float:
    """Print one line for sorted answer times; return their p99."""
    p99 = part[min(len(part) - 1, int(len(part) * 0.99))]
    slow = sum(t > TARGET_P99 for t in part)
    print(f"webhooks {name}: {len(part)}, p50 {statistics.median(part) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
          f"max {part[-1] * 1000:.1f} ms, {slow} over {TARGET_P99 * 1000:.0f} ms")
    return p99


def uptime() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def phase(folder: Path, db: Path, graph: FakeGraph, *, retention_days: float, rate: float, after: float,
          duration: float | None, first: int) -> tuple[list[tuple[float, float]], float, float, Server]:
    """One server on `db` under load: (times, start, end of the purge or of `duration`, the server)."""
    server = Server(folder, graph_url=graph.url, db=db, uvloop=False)
    configure(server, retention_days=retention_days)
    try:
        up = server.start()  # CPU: on a loaded machine a slow start-up is the imports waiting for a core
        print(f"server up in {up * 1000:.0f} ms, {server.cpu_seconds()[0] * 1000:.0f} ms of CPU ({uptime()})")
        times, began, ended = asyncio.run(load(server, rate=rate, after=after, duration=duration, first=first))
    finally:
        code = server.stop()
    if code not in (0, -15):
        print(f"warning: the server exited with code {code}")
    return times, began, ended, server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.purge", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="old history rows to purge (default 2,000,000)")
    parser.add_argument("--rate", type=float, default=100, help="webhooks per second during the purge (default 100)")
    parser.add_argument("--after", type=float, default=3, help="seconds of webhooks after the purge (default 3)")
    parser.add_argument("--baseline", type=float, default=30,
                        help="seconds of webhooks without a purge first, on the same database (default 30; 0: none)")
    opts = parser.parse_args(argv)
    print(f"{uptime()}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="wabot-purge-") as tmp:
        folder = Path(tmp)
        db = folder / "bench.db"
        started = time.perf_counter()
        fill(db, opts.rows, at=time.time() - 10 * 86400)
        print(f"database filled with {opts.rows:,} old rows in {time.perf_counter() - started:.1f} s "
              f"({db.stat().st_size / 2**20:.0f} MB)")
        graph = FakeGraph(uvloop=False)
        try:
            if opts.baseline > 0:
                times, _, _, _ = phase(folder, db, graph, retention_days=30, rate=opts.rate, after=0,
                                       duration=opts.baseline, first=0)
                summary("without a purge (baseline, same database)", sorted(t for _, t in times))
            times, began, ended, server = phase(folder, db, graph, retention_days=1, rate=opts.rate,
                                                after=opts.after, duration=None, first=200_000)
        finally:
            graph.stop()
        print(uptime())
        during = sorted(t for at, t in times if at <= ended)
        later = sorted(t for at, t in times if at > ended)
        line = [ln for ln in server.log.read_text("utf-8", "replace").splitlines() if "history rows older than" in ln]
        print(f"purge: {line[-1].split(': ', 1)[-1] if line else '?'}; ended {ended - began:.1f} s after the "
              "first webhook")
        if later:
            summary("after it", later)
        if not during:
            print("no webhook was sent during the purge: use more --rows")
            return 1
        p99 = summary("during the purge", during)
        verdict = p99 < TARGET_P99
        print(("TARGET MET" if verdict else "TARGET MISSED") + f": webhook p99 {p99 * 1000:.1f} ms during the purge"
              f" (target < {TARGET_P99 * 1000:.0f} ms)")
        return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
