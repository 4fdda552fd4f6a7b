"""The open-loop load generator: signed, Meta-shaped webhook POSTs on a fixed schedule.

Open loop: message k is due at start + k / rate whatever happened to earlier ones; a send that
falls behind the schedule is still made, and counted late. Message k comes from customer
k mod N, so each customer writes every N / rate seconds and has read the bot's answer by then.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .fakegraph import Reply
from .walk import GREETINGS, Move, Typed, next_move

LATE_SECONDS = 0.010  # a send this far behind its slot counts as late
BUSINESS = {"display_phone_number": "84281234567", "phone_number_id": "100200300400500"}


@dataclass(slots=True)
class Turn:
    """One inbound message and what came of it."""

    customer: str
    due: float
    sent: float = 0.0
    answered: float = 0.0  # the webhook's HTTP answer
    status: int = 0  # HTTP status; 0 = connection error
    first_reply: float = 0.0
    replies: int = 0


@dataclass(slots=True)
class Customer:
    wa_id: str
    name: str
    last: Reply | None = None
    turns: list[Turn] = field(default_factory=list)


def sign(secret: str, body: bytes) -> str:
    """X-Hub-Signature-256 as Meta computes it: "sha256=" + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def customer_ids(count: int, *, start: int = 0) -> list[str]:
    """Distinct Vietnamese-looking mobile numbers (wa_id form: digits, no +)."""
    return [f"849{10_000_000 + start + i:08d}" for i in range(count)]


def webhook_body(c: Customer, move: Move, *, wamid: str, timestamp: int) -> bytes:
    """The exact bytes Meta would POST for one message (ASCII JSON with \\u escapes, as Meta signs it)."""
    message: dict[str, Any] = {"from": c.wa_id, "id": wamid, "timestamp": str(timestamp)}
    if isinstance(move, Typed):
        message.update(type="text", text={"body": move.body})
    else:
        reply = {"id": move.id, "title": move.title}
        if move.kind == "list_reply" and move.description:
            reply["description"] = move.description
        message.update(
            type="interactive",
            interactive={"type": move.kind, move.kind: reply},
            context={"from": BUSINESS["display_phone_number"], "id": move.context},
        )
    value = {
        "messaging_product": "whatsapp",
        "metadata": BUSINESS,
        "contacts": [{"profile": {"name": c.name}, "wa_id": c.wa_id}],
        "messages": [message],
    }
    envelope = {"object": "whatsapp_business_account",
                "entry": [{"id": "900800700600500", "changes": [{"value": value, "field": "messages"}]}]}
    return json.dumps(envelope).encode()


class Generator:
    """Sends the schedule and matches the replies the fake Graph reports to the turns that caused them."""

    def __init__(self, url: str, secret: str, *, customers: list[str], seed: int = 1) -> None:
        self.url = url
        self.secret = secret
        names = ("Nguyễn Văn An", "Trần Thị Bình", "Lê Minh", "Phạm Thu Hà", "Võ Quốc Huy")
        self.customers = [Customer(w, names[i % len(names)]) for i, w in enumerate(customers)]
        self.by_id = {c.wa_id: c for c in self.customers}
        self.turns: list[Turn] = []
        self.rng = random.Random(seed)
        self.stray = 0  # replies to nobody we wrote to (or before their first message)
        self.reads = 0  # mark-as-read calls
        self.moves: Counter[str] = Counter()  # what customers sent: greeting, tap, answer, menu
        self.kinds: Counter[str] = Counter()  # what the bot sent: text, list, button, image, ...
        self.last_reply_at = 0.0
        self.run_id = f"{int(time.time() * 1000):x}"

    def on_replies(self, replies: list[Reply]) -> None:
        """Fake Graph records: attribute each to its customer's latest turn sent before it arrived."""
        for r in replies:
            self.last_reply_at = max(self.last_reply_at, r.at)
            c = self.by_id.get(r.to)
            self.kinds[r.kind] += 1
            if r.kind == "read":
                self.reads += 1
                continue
            if c is None:
                self.stray += 1
                continue
            c.last = r
            turn = next((t for t in reversed(c.turns) if t.sent and t.sent <= r.at), None)
            if turn is None:
                self.stray += 1
                continue
            if not turn.replies:
                turn.first_reply = r.at
            turn.replies += 1

    async def run(self, *, rate: float, duration: float, connections: int = 256) -> tuple[float, float]:
        """Send rate × duration messages on schedule; return (start, end) of the sending, monotonic."""
        total = int(rate * duration)
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            tasks: set[asyncio.Task[None]] = set()
            start = time.monotonic() + 0.05
            for k in range(total):
                due = start + k / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                c = self.customers[k % len(self.customers)]
                task = asyncio.create_task(self._send(session, c, due, k))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            end = time.monotonic()
            if tasks:
                await asyncio.wait(tasks, timeout=60)
        return start, end

    async def _send(self, session: aiohttp.ClientSession, c: Customer, due: float, k: int) -> None:
        turn = Turn(c.wa_id, due)
        move = next_move(c.last, self.rng)
        if isinstance(move, Typed):
            self.moves["greeting" if move.body in GREETINGS else "menu" if move.body == "menu" else "answer"] += 1
        else:
            self.moves["tap"] += 1
        body = webhook_body(c, move, wamid=f"wamid.bench.{self.run_id}.{k}", timestamp=int(time.time()))
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(self.secret, body)}
        c.turns.append(turn)
        self.turns.append(turn)
        turn.sent = time.monotonic()
        turn.status = await self.post(session, body, headers)
        turn.answered = time.monotonic()

    async def post(self, session: aiohttp.ClientSession, body: bytes, headers: dict[str, str]) -> int:
        """POST one webhook; its HTTP status, 0 when the connection failed."""
        try:
            async with session.post(self.url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return 0

    def unanswered(self) -> int:
        return sum(1 for t in self.turns if not t.replies)
