"""What one campaign message costs the server: CPU microseconds per send, the sender and the feed alone.

`python -m bench.sendcost --sends 8000 --rate 1000` runs wabot's real Campaigner and Sender in this process on a
fresh SQLite file, against the bench's fake Graph API in a process of its own, with no inbound load and no
webhook server: the CPU this process spends per campaign message at that pace (`--rate 0`: as fast as it can)
is what a send costs, apart from the full bench's noise (issue 13: 1,000 sends/s beside 200 inbound/s).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from wabot.db.store import Store
from wabot.server.campaigns import Campaigner
from wabot.server.outbox import Sender
from wabot.whatsapp.graph import GraphClient

from .campaign import FIRST
from .fakegraph import make_app
from .server import ENV, free_port


async def cost(graph_url: str, *, sends: int, rate: float) -> tuple[float, float, float]:
    """(CPU µs per campaign send, of which in the kernel, sends per second) for `sends` recipients at `rate`."""
    with tempfile.TemporaryDirectory(prefix="wabot-sendcost-") as tmp:
        store = await Store.open(Path(tmp) / "bench.db")
        await store.campaigns.add(name="bench", template="bench_promo", language="vi",
                                  recipients=[(str(FIRST + i), [f"Khách {i}", "20%"]) for i in range(sends)],
                                  invalid=[], now=time.time())
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
            graph = GraphClient(session, base_url=graph_url, version="v21.0",
                                phone_number_id=ENV["WHATSAPP_PHONE_NUMBER_ID"], token="bench-token", timeout=10)
            sender = Sender(store, graph, rate=rate or 1e9, max_attempts=12, concurrency=64)
            await sender.start()
            feeder = asyncio.create_task(Campaigner(store.campaigns, sender, rate=rate or 1000).run())
            before, began = os.times(), time.perf_counter()
            try:  # until every recipient is queued and every send recorded (a cheap look every 50 ms)
                while await store.campaigns.running() or not sender.idle.is_set() or sender.flushes:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                after, wall = os.times(), time.perf_counter() - began
                report = await store.campaigns.report(1)
                assert report is not None and report["sent"] == sends, report
            finally:
                feeder.cancel()
                await sender.stop(5)
                await store.close()
    user, system = after.user - before.user, after.system - before.system
    return (user + system) / sends * 1e6, system / sends * 1e6, sends / wall


def serve(port: int) -> None:
    """Process entry point: the bench's fake Graph API, nothing else."""
    web.run_app(make_app([]), host="127.0.0.1", port=port, print=None, access_log=None)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sendcost", description=__doc__)
    p.add_argument("--sends", type=int, default=8000, help="campaign recipients per round (default 8000)")
    p.add_argument("--rate", type=float, default=1000, help="outbox.rate_per_second (default 1000; 0: unpaced)")
    p.add_argument("--rounds", type=int, default=3, help="rounds, each on a fresh database (default 3)")
    args = p.parse_args()
    port = free_port()
    graph = multiprocessing.get_context("spawn").Process(target=serve, args=(port,), daemon=True)
    graph.start()
    try:
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        for _ in range(args.rounds):
            cpu, system, pace = asyncio.run(cost(f"http://127.0.0.1:{port}", sends=args.sends, rate=args.rate))
            print(f"{cpu:.0f} µs CPU per campaign send ({system:.0f} in the kernel) at {pace:.0f} sends/s", flush=True)
    finally:
        graph.kill()


if __name__ == "__main__":
    main()
