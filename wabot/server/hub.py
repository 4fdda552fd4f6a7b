"""Happenings: what the server tells the layers above while it runs (the console's live pages, the business
API's event feed) — a customer wrote, replies were queued, a delivery status came, a handoff opened or closed.

In-process and not durable: a subscriber that needs every event across restarts (webhooks to the shop's
systems) stores them itself in the same commit as the change. A subscriber that falls behind is told so
(`Happening.kind == "overflow"`) and must reload what it shows, rather than hold the server back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["RELAYED", "Happening", "Hub", "Kind"]

Kind = Literal[
    "message_in",  # data: {"id", "type", "text"}
    "replies_queued",  # data: {"ids": [outbox ids]}
    "status",  # data: {"wamid", "status"}
    "handoff_opened",  # data: {"reason"}
    "handoff_closed",  # data: {}
    "opted_out",
    "opted_in",
    "turn",  # data: {"flow", "step", "status", "missed": the text matched nothing, "text"} after every turn
    "overflow",  # to one subscriber only: it missed happenings and must reload
]


@dataclass(frozen=True, slots=True)
class Happening:
    kind: Kind
    customer: str
    data: Mapping[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


# what the other instances sharing a PostgreSQL database hear too (server/cluster.py): the console's live inbox
# on any instance shows a handoff wherever it happened (messages and ticks stay with the instance handling them)
RELAYED: frozenset[Kind] = frozenset({"handoff_opened", "handoff_closed", "opted_out", "opted_in"})


class Hub:
    """Fan-out of happenings to every current subscriber, each through its own bounded queue."""

    def __init__(self, *, backlog: int = 1000) -> None:
        self.backlog = backlog
        self._queues: dict[asyncio.Queue[Happening], frozenset[Kind] | None] = {}  # each with the kinds it hears
        self.relay: Callable[[Happening], None] | None = None  # several instances: passes RELAYED ones on

    def publish(self, kind: Kind, customer: str, data: Mapping[str, Any] | None = None) -> None:
        happening = Happening(kind, customer, data or {})
        self.deliver(happening)
        if self.relay is not None and kind in RELAYED:
            self.relay(happening)

    def deliver(self, happening: Happening) -> None:
        """Hand a happening to every subscriber (one published here, or relayed from another instance)."""
        for queue, kinds in self._queues.items():
            if kinds is not None and happening.kind not in kinds:
                continue
            if queue.qsize() >= self.backlog - 1:
                if queue.qsize() < self.backlog:
                    queue.put_nowait(Happening("overflow", ""))
                continue
            queue.put_nowait(happening)

    @contextlib.contextmanager
    def subscribe(self, kinds: frozenset[Kind] | None = None) -> Iterator[asyncio.Queue[Happening]]:
        """A queue of the happenings from now on (of `kinds` only, when given; "overflow" always)."""
        queue: asyncio.Queue[Happening] = asyncio.Queue(self.backlog)
        self._queues[queue] = kinds
        try:
            yield queue
        finally:
            self._queues.pop(queue, None)

    def wants(self, kind: Kind) -> bool:
        """Whether a happening of `kind` would reach anyone (so a caller can skip building its data)."""
        if self.relay is not None and kind in RELAYED:
            return True
        return any(kinds is None or kind in kinds for kinds in self._queues.values())

    @property
    def subscribers(self) -> int:
        return len(self._queues)

