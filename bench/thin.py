"""The thinnest honest pipeline (issue 14 item 5): what one WhatsApp message costs without wabot around it.

A standalone aiohttp server on the same stack and with the same guarantees as wabot's hot path, and nothing else:

- the webhook's raw body is checked against X-Hub-Signature-256 (HMAC-SHA256) before it is parsed;
- its messages are committed to an inbox table (SQLite, WAL, synchronous=NORMAL: survives kill -9), deduplicated
  by message id, before the 200;
- after the 200, one customer at a time and in arrival order, the customer's state (a JSON text) is read, the new
  state is written, the reply queued in an outbox table and the inbox row marked done, in one commit;
- the reply (one text: the customer's text echoed) is sent to the Graph API, one send in flight per customer, and
  its result (Meta's message id) recorded in its own commit.

No flows, no templates, no logging, no metrics, no retries: a floor, not a product. One transaction per step
(webhook, turn, send result), each on the loop, as the simplest correct code would do it. `python -m bench.thin
--port P --db FILE --graph URL --secret S --token T --phone ID`; `bench/compare.py` starts it beside wabot.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import signal
import sqlite3
from collections import deque
from typing import Any

import aiohttp
from aiohttp import web

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY, message_id TEXT UNIQUE NOT NULL, customer TEXT NOT NULL,
                                  message TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS state (customer TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, body TEXT NOT NULL,
                                   status TEXT NOT NULL DEFAULT 'queued', wamid TEXT);
"""

Inbound = tuple[int, str, str]  # (inbox seq, customer, text)


class Thin:
    def __init__(self, db: str, *, graph: str, secret: str, token: str, phone: str) -> None:
        self.conn = sqlite3.connect(db, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        self.secret = secret.encode()
        self.url = f"{graph.rstrip('/')}/v25.0/{phone}/messages"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.turns: asyncio.Queue[Inbound] = asyncio.Queue()
        self.outbox: dict[str, deque[tuple[int, str]]] = {}
        self.senders: dict[str, asyncio.Task[None]] = {}
        self.session: aiohttp.ClientSession | None = None

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        header = request.headers.get("X-Hub-Signature-256", "")
        expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), header.encode("utf-8", "surrogateescape")):
            return web.Response(status=401, text="invalid signature")
        try:
            payload = json.loads(body)
            found = [(m["id"], m["from"], m) for e in payload["entry"] for c in e["changes"]
                     for m in c["value"].get("messages", ())]
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="bad payload")
        fresh: list[Inbound] = []
        with self.conn:  # BEGIN ... COMMIT (sqlite3 opens the transaction itself at the first write)
            self.conn.execute("BEGIN IMMEDIATE")
            for wamid, customer, message in found:
                row = self.conn.execute(
                    "INSERT INTO inbox (message_id, customer, message) VALUES (?, ?, ?)"
                    " ON CONFLICT (message_id) DO NOTHING RETURNING seq",
                    (wamid, customer, json.dumps(message)),
                ).fetchone()
                if row is not None:
                    fresh.append((row[0], customer, (message.get("text") or {}).get("body", "")))
        for item in fresh:
            self.turns.put_nowait(item)
        return web.Response(text="ok")

    async def work(self) -> None:
        """The turns, one at a time in arrival order (so each customer's in order): state and reply, one commit."""
        while True:
            seq, customer, text = await self.turns.get()
            reply = json.dumps({"messaging_product": "whatsapp", "recipient_type": "individual", "to": customer,
                                "type": "text", "text": {"body": text or "?"}}, ensure_ascii=False)
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                row = self.conn.execute("SELECT state FROM state WHERE customer = ?", (customer,)).fetchone()
                state: dict[str, Any] = json.loads(row[0]) if row else {"turns": 0}
                state = {"turns": state["turns"] + 1, "last": text}
                self.conn.execute("INSERT INTO state (customer, state) VALUES (?, ?) ON CONFLICT (customer)"
                                  " DO UPDATE SET state = excluded.state", (customer, json.dumps(state)))
                out = self.conn.execute("INSERT INTO outbox (customer, body) VALUES (?, ?) RETURNING id",
                                        (customer, reply)).fetchone()[0]
                self.conn.execute("UPDATE inbox SET done = 1 WHERE seq = ?", (seq,))
            self.outbox.setdefault(customer, deque()).append((out, reply))
            if customer not in self.senders:
                self.senders[customer] = asyncio.create_task(self.send(customer))

    async def send(self, customer: str) -> None:
        """The customer's queued replies, one in flight at a time; each result recorded in its own commit."""
        assert self.session is not None
        queue = self.outbox[customer]
        try:
            while queue:
                out, reply = queue[0]
                async with self.session.post(self.url, data=reply.encode(), headers=self.headers) as resp:
                    answer = await resp.json()
                wamid = answer["messages"][0]["id"]
                with self.conn:
                    self.conn.execute("BEGIN IMMEDIATE")
                    self.conn.execute("UPDATE outbox SET status = 'sent', wamid = ? WHERE id = ?", (wamid, out))
                queue.popleft()
        finally:
            del self.senders[customer]
            if not queue:
                del self.outbox[customer]


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def serve(args: argparse.Namespace) -> None:
    thin = Thin(args.db, graph=args.graph, secret=args.secret, token=args.token, phone=args.phone)
    thin.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    app = web.Application()
    app.router.add_post("/webhook/whatsapp", thin.webhook)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024).start()
    worker = asyncio.create_task(thin.work())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    worker.cancel()
    await runner.cleanup()
    await thin.session.close()
    thin.conn.close()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.thin", description=__doc__)
    for name in ("port", "db", "graph", "secret", "token", "phone"):
        p.add_argument(f"--{name}", required=True, type=int if name == "port" else str)
    asyncio.run(serve(p.parse_args()))  # asyncio's own loop: the shipped default


if __name__ == "__main__":
    main()
