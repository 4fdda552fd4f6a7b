"""The webhook's answer time while the hourly retention purge deletes millions of rows (issue 15).

    python3 -m bench.purge                      # 2,000,000 old rows, webhooks at 100/s during the purge
    python3 -m bench.purge --rows 200000 --rate 50

The real server (a subprocess) starts on a database holding `--rows` history rows older than the
retention period, so its purge begins at start-up; signed webhooks go in at `--rate` per second
until the server logs the purge's end, and a few seconds after. Passes when the p99 answer time of
the webhooks sent during the purge stays under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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


async def post(session: aiohttp.ClientSession, url: str, body: bytes, times: list[tuple[float, float]]) -> None:
    started = time.perf_counter()
    async with session.post(url, data=body, headers={"X-Hub-Signature-256": sign(SECRET, body),
                                                     "Content-Type": "application/json"}) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"the server answered {resp.status}")
    times.append((started, time.perf_counter() - started))


async def load(server: Server, *, rate: float, after: float) -> tuple[list[tuple[float, float]], float, float]:
    """Webhooks at `rate` until the purge's log line and `after` seconds more: (times, purge start, purge end)."""
    url = server.url + "/webhook/whatsapp"
    times: list[tuple[float, float]] = []
    customers = customer_ids(100_000, start=900_000)
    began = time.perf_counter()
    ended: float | None = None
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession() as session:
        for k in range(10**9):
            due = began + k / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            body = webhook_body(Customer(customers[k % len(customers)], "Khách"), Typed("xin chào"),
                                wamid=f"wamid.bench.purge.{k}", timestamp=int(time.time()))
            task = asyncio.create_task(post(session, url, body, times))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if ended is None and k % 10 == 0 and "history rows older than" in server.tail(200):
                ended = time.perf_counter()
            if ended is not None and time.perf_counter() - ended > after:
                break
            if time.perf_counter() - began > 600:
                raise RuntimeError("the purge did not end within 10 minutes")
        await asyncio.gather(*tasks)
    return times, began, ended or began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.purge", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="old history rows to purge (default 2,000,000)")
    parser.add_argument("--rate", type=float, default=100, help="webhooks per second during the purge (default 100)")
    parser.add_argument("--after", type=float, default=3, help="seconds of webhooks after the purge (default 3)")
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wabot-purge-") as tmp:
        folder = Path(tmp)
        graph = FakeGraph(uvloop=False)
        server = Server(folder, graph_url=graph.url, uvloop=False)
        raw = yaml.safe_load(server.config.read_text(encoding="utf-8"))
        raw["history"]["retention_days"] = 1
        raw["logging"]["level"] = "INFO"  # the purge logs its end at INFO
        server.config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        started = time.perf_counter()
        fill(server.db, opts.rows, at=time.time() - 10 * 86400)
        print(f"database filled with {opts.rows:,} old rows in {time.perf_counter() - started:.1f} s "
              f"({server.db.stat().st_size / 2**20:.0f} MB)")
        try:
            up = server.start()
            print(f"server up in {up * 1000:.0f} ms; its purge started at start-up")
            times, began, ended = asyncio.run(load(server, rate=opts.rate, after=opts.after))
        finally:
            code = server.stop()
            graph.stop()
        during = sorted(t for at, t in times if at <= ended)
        later = sorted(t for at, t in times if at > ended)
        line = [ln for ln in server.log.read_text("utf-8", "replace").splitlines() if "history rows older than" in ln]
        print(f"purge: {line[-1].split(': ', 1)[-1] if line else '?'}; ended {ended - began:.1f} s after the "
              "first webhook")
        for name, part in (("during the purge", during), ("after it", later)):
            if part:
                p99 = part[min(len(part) - 1, int(len(part) * 0.99))]
                print(f"webhooks {name}: {len(part)}, p50 {statistics.median(part) * 1000:.1f} ms, "
                      f"p99 {p99 * 1000:.1f} ms, max {part[-1] * 1000:.1f} ms")
        if code not in (0, -15):
            print(f"warning: the server exited with code {code}")
        if not during:
            print("no webhook was sent during the purge: use more --rows")
            return 1
        p99 = during[min(len(during) - 1, int(len(during) * 0.99))]
        verdict = p99 < TARGET_P99
        print(("TARGET MET" if verdict else "TARGET MISSED") + f": webhook p99 {p99 * 1000:.1f} ms during the purge"
              f" (target < {TARGET_P99 * 1000:.0f} ms)")
        return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
