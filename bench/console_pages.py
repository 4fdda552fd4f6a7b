"""How fast the console's pages load with many stored conversations (issue 12: under 200 ms with 100,000).

    python3 -m bench.console_pages                       # 100,000 conversations, 400,000 messages
    python3 -m bench.console_pages --conversations 20000 --repeat 5

Fills a fresh SQLite file the way the server leaves it (conversations with state and contact, two messages
each way per customer, 50 waiting for a person, funnel and not-understood rows), starts the real app with the
console on loopback, signs in, and times each page over HTTP: the median and the slowest of `--repeat` loads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from wabot import console
from wabot.config import load_settings
from wabot.console import accounts
from wabot.db import codec, sql
from wabot.flows.load import load_configured
from wabot.server.adminsite import ADMIN_URL
from wabot.server.app import create_app
from wabot.whatsapp import inbound

REPO = Path(__file__).resolve().parent.parent
PAGES = ["/console/", "/console/customers", "/console/customers?q=0912345", "/console/customers?q=Nguyễn",
         "/console/customers?q=DH099999", "/console/customers?q=nobody",
         "/console/c/{customer}", "/console/numbers", "/console/flows", "/console/simulator"]
TARGET_MS = 200.0


def fill(path: Path, conversations: int) -> str:
    """A database holding `conversations` customers; returns one customer's number."""
    conn = sql.connect(str(path))
    rnd = random.Random(12)
    now = time.time()
    steps = [("main", "menu"), ("order", "quantity"), ("order", "confirm"), ("support", "code"), ("", "")]
    with sql.transaction(conn):
        for start in range(0, conversations, 10_000):
            conv, inbox, outbox, visits = [], [], [], []
            for n in range(start, min(start + 10_000, conversations)):
                customer = f"849{n:08d}"
                at = now - rnd.random() * 14 * 86400
                flow, step = rnd.choice(steps)
                handoff = n % 2000 == 0
                status = "handoff" if handoff else "waiting" if flow else "idle"
                state: dict[str, object] = {"flow": flow, "step": step, "status": status,
                         "vars": {"name": f"Khách {n}", "order_code": f"DH{n:06d}"}, "stack": [], "attempts": 0,
                         "misses": 0, "page": 0, "last_seen": at}
                contact = json.dumps({"wa_id": customer, "user_id": None, "name": f"Nguyễn Văn {n}"},
                                     ensure_ascii=False)
                conv.append((customer, json.dumps(state, ensure_ascii=False), state["status"], contact,
                             "customer asked" if handoff else None, at if handoff else None, at))
                for k in range(2):
                    message = inbound.Message(f"wamid.{n}.{k}", inbound.Customer(customer, name=f"Nguyễn Văn {n}"),
                                              "1", int(at), "text", inbound.Text("xin chào"))
                    inbox.append((message.id, customer, codec.dump_message(message), at + k))
                    body = {"messaging_product": "whatsapp", "to": customer, "type": "text",
                            "text": {"body": "Bạn cần gì hôm nay?"}}
                    outbox.append((customer, json.dumps(body, ensure_ascii=False),
                                   "failed" if n % 500 == 0 else "read", at + k + 0.5, at + k + 1))
                if flow:
                    visits.append((customer, flow, step, at))
            conn.executemany("INSERT INTO conversations (customer, state, status, contact, handoff_reason,"
                             " handoff_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)", conv)
            conn.executemany("INSERT INTO inbox (message_id, customer, message, received_at, done)"
                             " VALUES (?, ?, ?, ?, 1)", inbox)
            conn.executemany("INSERT INTO outbox (customer, body, status, created_at, updated_at, error_code, error)"
                             " VALUES (?, ?, ?, ?, ?, 131026, 'Message undeliverable')", outbox)
            conn.executemany("INSERT INTO visits (customer, flow, step, at) VALUES (?, ?, ?, ?)", visits)
            conn.executemany("INSERT INTO stops (customer, flow, step, at) VALUES (?, ?, ?, ?)", visits)
            conn.executemany("INSERT INTO misses (customer, flow, step, text, at) VALUES (?, ?, ?, ?, ?)",
                             [(c, f, s, rnd.choice(["con mèo", "giá bao nhiêu", "ship không"]), a)
                              for c, f, s, a in visits[::10]])
    conn.execute("ANALYZE")
    conn.close()
    return "84900000001"


async def measure(folder: Path, conversations: int, repeat: int) -> list[tuple[str, float, float]]:
    db = folder / "wabot.db"
    started = time.perf_counter()
    customer = fill(db, conversations)
    size = db.stat().st_size // 2**20
    print(f"filled {conversations:,} conversations in {time.perf_counter() - started:.1f} s ({size} MiB)")
    await accounts.add_user(db, "bench", "bench-password", "admin")
    config = folder / "config.yaml"
    config.write_text(f"database: {{path: '{db}'}}\nbot: {{flows: '{REPO / 'flows'}'}}\n"
                      "server: {host: 127.0.0.1, port: 0}\nadmin: {port: 0}\nlogging: {level: WARNING}\n",
                      encoding="utf-8")
    settings = load_settings(config)
    bot, _ = load_configured(settings.bot)
    runner = web.AppRunner(create_app(settings, bot, admin=[console.setup]))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    app = runner.app
    results = []
    try:
        jar = aiohttp.CookieJar(unsafe=True)  # the session cookie of a numeric host (127.0.0.1)
        async with aiohttp.ClientSession(base_url=app[ADMIN_URL], cookie_jar=jar) as session:
            await session.post("/console/login", data={"name": "bench", "password": "bench-password"},
                               headers={"Origin": app[ADMIN_URL]})
            for page in PAGES:
                path = page.format(customer=customer)
                times = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    async with session.get(path, allow_redirects=False) as resp:
                        await resp.read()
                        if resp.status != 200:
                            raise SystemExit(f"{path} answered {resp.status}, not the page")
                    times.append((time.perf_counter() - t0) * 1000)
                results.append((path, statistics.median(times), max(times)))
    finally:
        await runner.cleanup()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.console_pages", description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = asyncio.run(measure(Path(folder), args.conversations, args.repeat))
    print(f"{'page':45} {'median ms':>10} {'slowest ms':>11}")
    for path, median, slowest in results:
        print(f"{path:45} {median:10.1f} {slowest:11.1f}")
    worst = max(m for _, m, _ in results)
    print(("TARGET MET" if worst < TARGET_MS else "TARGET MISSED") + f": slowest median {worst:.1f} ms "
          f"(target {TARGET_MS:.0f} ms) with {args.conversations:,} conversations")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
